"""An exact lexer for plain shell lines, so the common command line is not handed to bashlex.

bashlex builds a full grammar parse (a yacc table walk, word expansion) on its first look at a line:
most of a never-seen call's policy time. Most lines agents send are plain: words, quoted strings, pipes,
`&&`/`||`/`;` and file redirects. `plain_line` reads exactly those and says None for anything else,
which then goes to bashlex as before. What it accepts, it reads as bashlex (through `shell_parse`)
does: words split on blanks, quotes removed, `|` grouping stages tighter than `&&`, `||`, `;`.
Refused outright: `$`, backticks, backslashes, `!`, newlines, globs, braces, parentheses, `#`, `&`
alone, one kind of quote inside the other (bashlex drops the inner ones: `'a "b"'` is `a b` to it),
here-documents, redirects with a file descriptor (`2>`, `>&`) or glued to a word, quoted redirect
targets, reserved words (`if`, `for`, ...), `a+=b` assignments and empty commands.
`tests/unit/guard/catalogue/test_shell_lex.py` compares it with bashlex word for word on generated
lines, and every guard test runs with it on and off (it is off with the pre-screens).
"""

from __future__ import annotations

import re

_UNQUOTED = r"[A-Za-z0-9_./=:,@%+\-~^]"
_WORD = rf"(?:{_UNQUOTED}++|'[^'\"$`\\!\n\r]*+'|\"[^\"'$`\\!\n\r]*+\")++"
_OP = r"&&|\|\||>>|[|;<>]"
_LINE = re.compile(rf"(?:[ \t]*+(?:{_WORD}|{_OP}))*+[ \t]*+")
"""A line made of words, operators and blanks only (possessive: no backtracking, linear in the text)."""
_TOKEN = re.compile(rf"([ \t]*+)(?:({_WORD})|({_OP}))")
_SEGMENT = re.compile(r"'([^']*)'|\"([^\"]*)\"|([^'\"]+)")
RESERVED = frozenset(
    {"if", "then", "else", "elif", "fi", "case", "esac", "for", "select", "while", "until", "do", "done", "in",
     "function", "time", "coproc"}
)  # fmt: skip
"""Words bash reads as grammar in a command's first place; refused anywhere, to stay simple."""
_APPEND = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+=")
"""`a+=1 cmd`: bash reads an assignment (`shell_parse` strips only `a=1`); refused."""
_REDIRECTS = frozenset({">", ">>", "<"})

Stage = tuple[list[str], list[tuple[str, str]]]
"""One simple command: its words (quotes removed) and its redirects (operator, target)."""


def _unquote(word: str) -> str:
    if "'" not in word and '"' not in word:
        return word
    return "".join(m.group(1) or m.group(2) or m.group(3) or "" for m in _SEGMENT.finditer(word))


def plain_line(text: str) -> list[list[Stage]] | None:
    """The pipelines of `text` (each a list of stages), when it is a plain line; None for anything else."""
    if _LINE.fullmatch(text) is None:
        return None
    pipelines: list[list[Stage]] = []
    stages: list[Stage] = []
    words: list[str] = []
    redirects: list[tuple[str, str]] = []
    pending = ""  # a redirect operator waiting for its target
    glued = False  # the previous token was a word ending right here (`2>`: a file descriptor)
    for blank, word, op in _TOKEN.findall(text):
        if word:
            if pending:
                if "'" in word or '"' in word:
                    return None
                redirects.append((pending, word))
                pending = ""
            else:
                value = _unquote(word)
                if value in RESERVED or _APPEND.match(value):
                    return None
                words.append(value)
            glued = True
            continue
        if pending or (glued and not blank and op in _REDIRECTS):
            return None
        glued = False
        if op in _REDIRECTS:
            pending = op
            continue
        if not words and not redirects:
            return None  # an empty command: `| a`, `a && && b`
        stages.append((words, redirects))
        words, redirects = [], []
        if op != "|":
            pipelines.append(stages)
            stages = []
    if pending or not (words or redirects):
        return None
    stages.append((words, redirects))
    pipelines.append(stages)
    return pipelines
