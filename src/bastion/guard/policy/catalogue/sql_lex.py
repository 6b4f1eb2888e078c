"""SQL below the parser: statements split by tokens, dynamic SQL payloads, and a verdict on what will not parse.

sqlglot's tokenizer reads every dialect's strings (`'it''s'`, `N'...'`, `$tag$...$tag$`), comments
and identifiers; its statement parser is what judges. This module covers what the parser cannot:
- a script is split at top-level semicolons so one statement the parser rejects does not hide the
  others (`USE prod; <odd statement>; DROP TABLE users`);
- the text that dynamic SQL runs (`EXEC('...')`, `EXECUTE IMMEDIATE`, `sp_executesql`, `PREPARE s
  FROM @v`, PL/pgSQL `EXECUTE format(...)`, `DO $$...$$`) is put together from its string literals
  and the literals assigned to the variables it names, and handed back to be judged as SQL;
- a statement no dialect parses is judged from its tokens, towards `ask` when a destructive verb
  is among them (`unparsed_write`), or `dynamic_sql` when the text dynamic SQL runs cannot be read.
MySQL executable comments (`/*!50000 DROP TABLE t */`) are code: `unwrap_executable_comments`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from sqlglot.dialects.postgres import Postgres
from sqlglot.tokenizer_core import Token, TokenType


class _Lexer(Postgres.Tokenizer):
    # sqlglot swallows the rest of a "command" (EXEC, DO, PREPARE, ...) as one string; we want its tokens.
    COMMANDS: ClassVar[set[TokenType]] = set()


_LEXER = _Lexer()
_STRINGS = frozenset({TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.HEREDOC_STRING, TokenType.RAW_STRING})
MAX_PAYLOAD = 65_536
"""The longest dynamic SQL text rebuilt; a longer one is cut there and counted as unreadable (`dynamic_sql`)."""
_GO_LINE = re.compile(r"(?im)^[ \t]*go(?:[ \t]+\d+)?[ \t]*;?[ \t]*$")
_EXEC_COMMENT = re.compile(r"/\*M?!\d*|\*/")
DESTRUCTIVE_VERBS = frozenset({"drop", "truncate", "delete", "update", "alter", "grant", "revoke", "rename", "merge"})
_OBJECTS = frozenset({"table", "tables", "database", "schema", "view", "index", "user", "role", "function", "procedure",
                      "trigger", "sequence", "column", "collection", "keyspace", "type", "extension", "materialized",
                      "temporary", "owned", "login", "if", "policy", "constraint"})  # fmt: skip
_VERB_SHAPE: dict[str, frozenset[str]] = {
    "drop": _OBJECTS, "alter": _OBJECTS, "delete": frozenset({"from", "where"}), "update": frozenset({"set"}),
    "grant": frozenset({"on", "to"}), "revoke": frozenset({"on", "from"}), "rename": frozenset({"to", "table"}),
    "merge": frozenset({"into", "using"}), "truncate": frozenset(),
}  # fmt: skip
"""What follows a destructive verb (within a few tokens) when it is SQL and not prose."""
_NOT_A_VERB_AFTER = frozenset({"on", "for", "key", "cascade", "before", "after", "instead", "of", "or"})
_BLOCK_WORDS = frozenset({"begin", "then", "else", "loop", "do", "as", "$$", "atomic", "is", "declare"})
STATEMENT_STARTS = frozenset({"drop", "truncate", "delete", "update", "alter", "grant", "revoke", "insert", "select",
                              "copy", "create", "merge", "exec", "execute", "with"})  # fmt: skip
_CONCAT_WORDS = frozenset({"concat", "concat_ws", "format", "n", "nvarchar", "varchar", "cast", "convert", "as",
                           "text", "immediate", "using", "into"})  # fmt: skip
_EXEC_SP = re.compile(r"^(?:\[?\w+\]?\.)*\[?(sp_executesql|sp_sqlexec)\]?$", re.I)
_NAME_TOKENS = frozenset({TokenType.VAR, TokenType.IDENTIFIER, TokenType.DOT, TokenType.L_BRACKET, TokenType.R_BRACKET})
_ROUTINE = frozenset({"function", "procedure", "proc", "trigger", "rule", "event"})


@dataclass(frozen=True, slots=True)
class Piece:
    """One statement of a script: its text and tokens."""

    text: str
    tokens: tuple[Token, ...]


def unwrap_executable_comments(text: str) -> str:
    """`/*!50000 DROP TABLE t */` as MySQL runs it: the comment markers gone, the code kept."""
    if "/*!" not in text and "/*M!" not in text:
        return text
    out, depth, pos = [], 0, 0
    for m in _EXEC_COMMENT.finditer(text):
        if m.group(0) == "*/":
            if depth:
                out.append(text[pos : m.start()] + " ")
                pos, depth = m.end(), depth - 1
            continue
        out.append(text[pos : m.start()] + " ")
        pos, depth = m.end(), depth + 1
    out.append(text[pos:])
    return "".join(out)


def split_batches(text: str) -> str:
    """T-SQL batches: a line that is only `GO` (or `GO 5`) ends the statements before it."""
    return _GO_LINE.sub(";", text) if "go" in text.lower() else text


def tokens(text: str) -> tuple[Token, ...] | None:
    """The tokens of `text`, or None when even the tokenizer refuses it."""
    try:
        return tuple(_LEXER.tokenize(text))
    except Exception:  # sqlglot's TokenError, and anything odd input provokes
        return None


def split(text: str, toks: tuple[Token, ...]) -> list[Piece]:
    """The statements of a script, split at semicolons outside strings, comments and parentheses."""
    pieces: list[Piece] = []
    start, depth, first = 0, 0, 0
    for i, tok in enumerate(toks):
        if tok.token_type is TokenType.L_PAREN:
            depth += 1
        elif tok.token_type is TokenType.R_PAREN:
            depth = max(0, depth - 1)
        elif tok.token_type is TokenType.SEMICOLON and depth == 0:
            if i > first:
                pieces.append(Piece(text[start : tok.start].strip(), toks[first:i]))
            start, first = tok.end + 1, i + 1
    if len(toks) > first:
        pieces.append(Piece(text[start:].strip(), toks[first:]))
    return pieces


def _word(tok: Token) -> str:
    return tok.text.lower() if tok.token_type not in _STRINGS else ""


def token_ops(piece: Piece) -> set[str]:
    """What a statement no parser accepted does, judged from its tokens (fail towards `ask`)."""
    words = [_word(t) for t in piece.tokens]
    first = next((w for w in words if w and w != "("), "")
    ops: set[str] = set()
    if first == "drop" and len(words) > 1 and words[1] in ("database", "schema"):
        ops |= {"drop", "drop_database"}
    elif first == "drop" and len(words) > 1 and words[1] in ("table", "view", "collection", "keyspace"):
        ops.add("drop")
    elif first == "truncate":
        ops.add("truncate")
    elif first in ("grant", "revoke"):
        ops.add(first)
    for i, w in enumerate(words):
        if w in DESTRUCTIVE_VERBS and (i == 0 or words[i - 1] not in _NOT_A_VERB_AFTER):
            reach = 2 if w in ("drop", "alter") else 8
            if _VERB_SHAPE[w] & set(words[i + 1 : i + reach]) or (w == "truncate" and i + 1 < len(words)):
                ops.add("unparsed_write")
                break
    return ops


def embedded_starts(piece: Piece) -> list[str]:
    """Statements written after a block keyword (`BEGIN DROP TABLE t`, `THEN DELETE FROM t`), each up to the
    next one, as text."""
    toks, base = piece.tokens, piece.tokens[0].start if piece.tokens else 0
    starts: list[int] = []
    words = [_word(t) for t in toks[:12]]
    if words and words[0] == "explain" and ("analyze" in words or "analyse" in words):  # EXPLAIN ANALYZE runs it
        starts += [next((i for i in range(1, len(toks)) if _word(toks[i]) in STATEMENT_STARTS), len(toks))][:1]
    starts += [
        i for i in range(1, len(toks)) if _word(toks[i]) in STATEMENT_STARTS and _word(toks[i - 1]) in _BLOCK_WORDS
    ]
    starts = sorted({i for i in starts if i < len(toks)})
    if not starts:
        return []
    ends = [*starts[1:], len(toks)]
    return [
        piece.text[toks[a].start - base : (toks[b].start - base) if b < len(toks) else len(piece.text)].strip()
        for a, b in zip(starts, ends, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class Payload:
    """The text one dynamic SQL site runs; `opaque` when part of it is computed (`CHAR(68)`, a column)."""

    text: str
    opaque: bool


def dynamic_payloads(pieces: list[Piece]) -> list[Payload]:
    """The SQL text each dynamic SQL site of a script runs, as far as literals show it."""
    assigned = _assignments(pieces)
    out: list[Payload] = []
    for piece in pieces:
        toks = piece.tokens
        words = [_word(t) for t in toks]
        for i, w in enumerate(words):
            if w == "do" and i + 1 < len(toks) and toks[i + 1].token_type in _STRINGS:
                out.append(Payload(toks[i + 1].text, False))
            elif w in ("exec", "execute") and i + 1 < len(toks):
                j = i + 1
                name, after = _name_at(toks, j)
                if words[j] == "immediate":
                    j += 1
                elif _EXEC_SP.match(name):
                    j = after
                elif words[j] not in ("(", "@") and toks[j].token_type not in _STRINGS:
                    if words[j] in assigned and w == "execute":  # EXECUTE s, s prepared earlier
                        out.append(assigned[words[j]])
                    elif words[j] in ("format", "concat") or (j + 1 < len(toks) and words[j + 1] == "("):
                        out.append(_expression(toks, j, assigned))
                    continue  # EXEC dbo.proc @a = 1: a stored procedure, not dynamic SQL
                if j < len(toks):
                    out.append(_expression(toks, j, assigned))
            elif w == "create" and i == 0 and _ROUTINE.intersection(words[:8]):
                # A routine's body runs whenever it is called: judge it as code.
                out += [Payload(t.text, False) for t in toks if t.token_type in _STRINGS and len(t.text) > 8]
            elif w == "prepare" and i + 2 < len(toks):
                if words[i + 2] == "from":
                    assigned[words[i + 1]] = _expression(toks, i + 3, assigned)
                elif words[i + 2] == "as" and i + 3 < len(toks):
                    out.append(Payload(piece.text[toks[i + 3].start - toks[0].start :], False))
    return out


def _name_at(toks: tuple[Token, ...], i: int) -> tuple[str, int]:
    """A dotted, possibly bracketed or quoted name at token `i` (`[sys].[sp_executesql]`) and the index after it."""
    parts: list[str] = []
    while i < len(toks) and toks[i].token_type in _NAME_TOKENS:
        parts.append(toks[i].text)
        i += 1
    return "".join(parts), i


def _var_at(toks: tuple[Token, ...], i: int) -> tuple[str, int] | None:
    """The variable named at token `i` (`@s` is two tokens) and the index after it."""
    if toks[i].text == "@" and i + 1 < len(toks):
        return "@" + toks[i + 1].text.lower(), i + 2
    if toks[i].token_type is TokenType.VAR:
        return toks[i].text.lower(), i + 1
    return None


def _assignments(pieces: list[Piece]) -> dict[str, Payload]:
    """Variables given a literal in the script: `SET @s = '...'`, `DECLARE @s NVARCHAR(9) = '...'`, `v := '...'`."""
    found: dict[str, Payload] = {}
    for piece in pieces:
        toks = piece.tokens
        for i in range(len(toks)):
            var = _var_at(toks, i)
            if var is None:
                continue
            name, j = var
            for k in range(j, min(j + 6, len(toks))):
                if toks[k].text in ("=", ":=") or toks[k].token_type is TokenType.COLON_EQ:
                    found[name] = _expression(toks, k + 1, found)
                    break
                if toks[k].token_type in (TokenType.COMMA, TokenType.SEMICOLON):
                    break
    return found


def _expression(toks: tuple[Token, ...], start: int, assigned: dict[str, Payload]) -> Payload:
    """The text an expression from token `start` to the end of its statement (or a top-level comma) builds."""
    parts: list[str] = []
    opaque, depth, i, size = False, 0, start, 0
    while i < len(toks):
        tok = toks[i]
        kind = tok.token_type
        if kind is TokenType.L_PAREN:
            depth += 1
        elif kind is TokenType.R_PAREN:
            depth -= 1
            if depth < 0:
                break
        elif kind is TokenType.COMMA and depth == 0:
            break
        elif kind in _STRINGS:
            parts.append(tok.text)
            size += len(tok.text)
        elif kind in (TokenType.PLUS, TokenType.DPIPE, TokenType.COMMA, TokenType.NUMBER, TokenType.EQ):
            pass
        elif (var := _var_at(toks, i)) is not None and var[1] < len(toks) and toks[var[1]].text == "=":
            i = var[1] + 1  # a named argument (`@stmt = N'...'`): its value follows
            continue
        elif var is not None and var[0] in assigned:
            parts.append(assigned[var[0]].text)
            opaque |= assigned[var[0]].opaque
            size += len(parts[-1])
            i = var[1]
            continue
        elif _word(tok) not in _CONCAT_WORDS:
            opaque = True
        if size > MAX_PAYLOAD:  # `SET @a = @a + @a` doubles: what is beyond this is not followed
            return Payload("".join(parts)[:MAX_PAYLOAD], True)
        i += 1
    return Payload("".join(parts), opaque or not parts)
