"""Reading bastion.yaml carefully: YAML with line numbers, `${ENV}` interpolation, and one
`ConfigError` that names the file, line, key and fix instead of a raw pydantic dump."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

if TYPE_CHECKING:
    import yaml

Loc = tuple[str | int, ...]
"""A key path into the YAML document: mapping keys and sequence indexes."""

DOCS = "docs/configuration.md"


class ConfigError(Exception):
    """bastion.yaml is missing, malformed or wrong. `key` is a dotted path ("" for the whole file).

    `also` holds further problems found in the same pass (the CLI may print them after this one).
    """

    def __init__(
        self,
        file: Path,
        key: str,
        problem: str,
        fix: str,
        *,
        line: int | None = None,
        also: Sequence[ConfigError] = (),
    ) -> None:
        self.file = file
        self.key = key
        self.problem = problem.rstrip(".")
        self.fix = fix.rstrip(".")
        self.line = line
        self.also = tuple(also)
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.problem}. Fix: {self.fix}."


def format_key(loc: Loc) -> str:
    """`("servers", "files", "args", 1)` -> `servers.files.args[1]`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def config_problem(problem: str, fix: str, *path: str | int) -> PydanticCustomError:
    """A validation error reported as is, at `path` (default: where pydantic raised it)."""
    return PydanticCustomError("bastion", "{problem}", {"problem": problem, "fix": fix, "path": path})


def check_tool_globs(value: Any, example: str, server_example: str, *path: str) -> Any:
    """The keys of a mapping of tool globs: each a tool name or glob, or `server/tool`."""
    for glob in value if isinstance(value, dict) else ():
        if not isinstance(glob, str) or not glob.strip() or glob.count("/") > 1:
            raise config_problem(
                f"`{glob}` is not a tool glob",
                f"write a tool name or glob (`{example}`), or `server/tool` (`{server_example}`)",
                *path,
                str(glob),
            )
    return value


def check_http_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        got = f"`{parts.scheme}://`" if parts.scheme else "no scheme"
        raise config_problem(
            f"must be an http:// or https:// URL (it has {got})", "write e.g. https://mcp.example.com/mcp"
        )
    return url.strip()


def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise config_problem(f"`{host}` is not an IPv6 address", "write e.g. [::1]:8750") from None
    elif ":" in host:
        raise config_problem("an IPv6 address needs brackets", f"write [{host}]:{port or 8750}")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise config_problem("must be host:port with a port from 0 to 65535", "write e.g. 127.0.0.1:8750 or [::1]:8750")
    if not re.fullmatch(r"[A-Za-z0-9.:%-]+", host):
        raise config_problem(f"`{host}` is not a host name or IP address", "write e.g. 127.0.0.1:8750")
    return host, int(port)


class KeyLines:
    """Line numbers (1-based) of the keys and list items of a composed YAML document."""

    def __init__(self, lines: Mapping[Loc, int] | None = None) -> None:
        self._lines = dict(lines or {})

    def line_of(self, loc: Loc) -> int | None:
        """The line of `loc`, or of its nearest enclosing key that the document has."""
        for end in range(len(loc), 0, -1):
            if (line := self._lines.get(loc[:end])) is not None:
                return line
        return None


def parse_yaml(text: str, file: Path) -> tuple[Any, KeyLines]:
    """Parse one YAML document once, keeping key line numbers; duplicate keys are an error."""
    import yaml  # loaded by the first file read: `bastion wrap -- CMD` reads none

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, KeyLines()
        lines: dict[Loc, int] = {}
        _index(node, (), lines, file)
        return loader.construct_document(node), KeyLines(lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError(
            file,
            "",
            f"invalid YAML: {exc.problem or exc.context}",
            "check the indentation (spaces, not tabs) and quote values that contain `: ` or ` #`",
            line=mark.line + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, "", f"invalid YAML: {exc}", "check the file is a YAML document") from None
    finally:
        loader.dispose()


def _index(node: yaml.Node, path: Loc, lines: dict[Loc, int], file: Path, depth: int = 0) -> None:
    import yaml

    if depth > 64:  # an alias cycle, or absurd nesting: stop mapping lines, the data is still checked
        return
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            here = (*path, key_node.value)
            line = key_node.start_mark.line + 1
            if here in lines:
                raise ConfigError(
                    file,
                    format_key(here),
                    f"appears twice (lines {lines[here]} and {line})",
                    "keep one of them; YAML would silently use the last",
                    line=line,
                )
            lines[here] = line
            _index(value_node, here, lines, file, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _index(item, (*path, index), lines, file, depth + 1)


_REFERENCE = re.compile(
    r"\$(?:(?P<dollar>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|(?P<bad>\{))"
)


def interpolate(data: Any, environ: Mapping[str, str], file: Path, lines: KeyLines, path: Loc = ()) -> Any:
    """Replace `${VAR}`, `${VAR:-default}` and `$$` in every string value (never in keys).

    The default applies when VAR is unset or empty, as in the shell. A lone `$` stays as is.
    """
    if isinstance(data, dict):
        return {key: interpolate(value, environ, file, lines, (*path, key)) for key, value in data.items()}
    if isinstance(data, list):
        return [interpolate(item, environ, file, lines, (*path, index)) for index, item in enumerate(data)]
    if not isinstance(data, str) or "$" not in data:
        return data

    def substitute(match: re.Match[str]) -> str:
        if match["dollar"]:
            return "$"
        name = match["name"]
        if name is None:
            raise ConfigError(
                file,
                format_key(path),
                "has a `${` that is not a valid variable reference",
                "write ${NAME} or ${NAME:-default} (NAME: letters, digits, _); write $$ for a literal $",
                line=lines.line_of(path),
            )
        value = environ.get(name)
        if match["default"] is not None and not value:
            return match["default"]
        if value is None:
            raise ConfigError(
                file,
                format_key(path),
                f"environment variable `{name}` is not set",
                f"set {name} in Bastion's environment, or give a default: ${{{name}:-value}}",
                line=lines.line_of(path),
            )
        return value

    return _REFERENCE.sub(substitute, data)


def yaml_keys(model: type[BaseModel]) -> list[str]:
    """The YAML keys a model accepts (field aliases where set)."""
    return [field.alias or name for name, field in model.model_fields.items()]


_TYPE_PROBLEMS: dict[str, tuple[str, str]] = {
    "string_type": ("must be text", 'quote the value, e.g. "8080"'),
    "bool_type": ("must be true or false", "write true or false"),
    "int_type": ("must be a whole number", "write a number such as 4194304"),
    "int_parsing": ("must be a whole number", "write a number such as 4194304"),
    "int_from_float": ("must be a whole number", "drop the fraction"),
    "float_type": ("must be a number", "write a number of seconds such as 30 or 2.5"),
    "float_parsing": ("must be a number", "write a number of seconds such as 30 or 2.5"),
    "finite_number": ("must be a finite number", "write a number of seconds such as 30 or 2.5"),
    "greater_than": ("must be greater than {gt}", "use a value greater than {gt}"),
    "literal_error": ("must be one of {expected}", "use one of {expected}"),
    "enum": ("must be one of {expected}", "use one of {expected}"),
    "dict_type": ("must be a mapping", "write it as indented `key: value` lines"),
    "model_type": ("must be a mapping", "write it as indented `key: value` lines"),
    "model_attributes_type": ("must be a mapping", "write it as indented `key: value` lines"),
    "tuple_type": ("must be a list", "write it as [a, b] or as indented `- item` lines"),
    "list_type": ("must be a list", "write it as [a, b] or as indented `- item` lines"),
    "frozen_set_type": ("must be a list", "write it as [a, b] or as indented `- item` lines"),
    "path_type": ("must be a path", "write a file system path as text"),
}


def from_validation_error(
    err: ValidationError,
    *,
    file: Path,
    lines: KeyLines,
    models_at: Mapping[Loc, type[BaseModel]],
    yaml_path: Callable[[Loc], Loc],
) -> ConfigError:
    """One ConfigError for the first problem pydantic found, the rest in `.also`.

    `models_at` maps raw pydantic locations (`"*"` matches any key) to the model validated
    there, for listing allowed keys; `yaml_path` turns a raw location into a YAML key path.
    """
    found = [_one(detail, file, lines, models_at, yaml_path) for detail in err.errors()]
    found.sort(key=lambda error: error.line or 0)
    first, *rest = found
    return ConfigError(first.file, first.key, first.problem, first.fix, line=first.line, also=rest)


def _one(
    detail: ErrorDetails,
    file: Path,
    lines: KeyLines,
    models_at: Mapping[Loc, type[BaseModel]],
    yaml_path: Callable[[Loc], Loc],
) -> ConfigError:
    raw: Loc = tuple(part for part in detail["loc"] if part != "[key]")
    ctx: dict[str, Any] = dict(detail.get("ctx") or {})
    loc = yaml_path(raw)
    kind = detail["type"]
    if kind == "bastion":
        loc = tuple(ctx.get("path") or loc)
        problem, fix = str(ctx["problem"]), str(ctx["fix"])
    elif kind == "server_kind":
        problem, fix = _server_kind_problem(detail["input"])
    elif kind == "extra_forbidden":
        problem, fix = f"unknown key `{loc[-1]}`", _allowed(str(loc[-1]), raw[:-1], models_at)
    elif kind == "missing":
        parent = format_key(loc[:-1]) or "the top level"
        problem, fix = "is missing and is required", f"add `{loc[-1]}:` under {parent}"
    elif kind in _TYPE_PROBLEMS:
        problem, fix = (text.format(**ctx) for text in _TYPE_PROBLEMS[kind])
    else:
        message = detail["msg"].removeprefix("Value error, ")
        problem, fix = message[:1].lower() + message[1:], f"see {DOCS}"
    return ConfigError(file, format_key(loc), problem, fix, line=lines.line_of(loc))


def _server_kind_problem(entry: Any) -> tuple[str, str]:
    if not isinstance(entry, dict):
        return (
            "must be a mapping with `command` (a local server) or `url` (a remote one)",
            "write e.g. `time: {command: mcp-server-time}` or `crm: {url: https://crm.internal/mcp}`",
        )
    if "command" in entry:
        return (
            "has both `command` and `url`",
            "keep `command` to launch a local stdio server, or `url` for a remote one",
        )
    return "has neither `command` nor `url`", "add `command: <program>` (local stdio server) or `url: https://...`"


def _allowed(key: str, parent: Loc, models_at: Mapping[Loc, type[BaseModel]]) -> str:
    model = next((m for pattern, m in models_at.items() if _matches(pattern, parent)), None)
    if model is None:
        return f"remove it (see {DOCS})"
    allowed = yaml_keys(model)
    import difflib  # here: only a mistyped key needs it, not every gateway

    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean `{close[0]}`? " if close else "remove it; "
    return hint + "allowed keys here: " + ", ".join(allowed)


def _matches(pattern: Loc, loc: Loc) -> bool:
    return len(pattern) == len(loc) and all(p in ("*", part) for p, part in zip(pattern, loc, strict=True))
