"""What inline interpreter code does, as effects the shell judgements already understand.

An `Effect` is one action found in `python -c`, `node -e`, `perl -e`, ... code: a shell string or
an argv it runs, a path it deletes, reads or writes, a URL it fetches or sends to. `as_argv` turns
each into the equivalent command line (`shutil.rmtree(p)` is `rm -r p`, `requests.post(u, data=
open(f))` is `curl --data-binary @f u`), so every family judges it with its usual rules.
"""

from __future__ import annotations

from dataclasses import dataclass

SHELL, ARGV, DELETE, DELETE_TREE, READ, WRITE = "shell", "argv", "delete", "delete_tree", "read", "write"
SEND, FETCH, CHMOD, RUN_DOWNLOAD, HIDDEN = "send", "fetch", "chmod", "run_download", "hidden"


@dataclass(frozen=True, slots=True)
class Effect:
    """One action of inline code: its kind and its words (path, URL, command, ...)."""

    kind: str
    words: tuple[str, ...]


def effect(kind: str, *words: str) -> Effect:
    return Effect(kind, tuple(words))


def as_argv(e: Effect, data_file: str = "") -> tuple[list[str], tuple[tuple[str, str], ...]] | None:
    """The command line equivalent to `e` (argv and redirects); None for shell strings and notes."""
    w = list(e.words)
    if not w and e.kind != ARGV:
        return None
    if e.kind == ARGV:
        return (w, ()) if w else None
    if e.kind == DELETE_TREE:
        return ["rm", "-r", "--", *w], ()
    if e.kind == DELETE:
        return ["rm", "--", *w], ()
    if e.kind == READ:
        return ["cat", "--", *w], ()
    if e.kind == WRITE:
        return ["tee", "--", w[0]], ((">", w[0]),)
    if e.kind == CHMOD:
        return ["chmod", *w], ()
    if e.kind == FETCH:
        return (["curl", "-o", w[1], w[0]] if len(w) > 1 else ["curl", w[0]]), ()
    if e.kind == SEND:
        data = w[1] if len(w) > 1 and w[1] else data_file
        return ["curl", "-X", "POST", *(["--data-binary", f"@{data}"] if data else []), w[0]], ()
    return None
