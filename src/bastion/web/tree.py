"""A JSON value as a tree a person can read: nested `<details>` to fold and unfold, no script needed.

Secrets are masked before anything is drawn (`mask`: the audit log's own recognisers), so a
log kept in `audit.mode: full` shows a viewer `[REDACTED:...]`, not the credential. A text
item of a tool result that holds JSON is drawn as the tree it is. Everything is HTML-escaped
here; only the tags are ours.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from bastion.audit.redact import MASK, SecretRedactor

MAX_DEPTH = 24
"""Below this depth a value is shown as JSON text (the audit log caps its payloads' size, not depth)."""
OPEN_DEPTH = 4
"""Levels unfolded when the page opens; deeper ones open with a click."""
MAX_OPEN_ITEMS = 20
"""A list or mapping with more entries starts folded, whatever its depth."""

_redactor = SecretRedactor()


def mask(value: Any) -> Any:
    """`value` with every secret the audit log recognises masked, and values under secret-named keys replaced."""
    return _redactor(value)


def tree(value: Any, *, label: str = "") -> Markup:
    """`value` (secrets masked) as nested lists in `<details>`; `label` names the root."""
    try:
        shown = mask(_expand_json_text(value))
    except RecursionError:  # JSON text nested deeper than Python recurses: the value as stored, masked
        try:
            shown = mask(value)
        except RecursionError:
            shown = "(nested too deeply to show)"
    return Markup('<div class="tree">') + _node(shown, label, 0) + Markup("</div>")


def _expand_json_text(value: Any) -> Any:
    """Tool results carry JSON as text (`{"type": "text", "text": "{...}"}`): show that JSON as a tree."""
    if isinstance(value, Mapping):
        expanded = {key: _expand_json_text(item) for key, item in value.items()}
        text = expanded.get("text")
        if expanded.get("type") == "text" and isinstance(text, str) and text.lstrip()[:1] in ("{", "["):
            with contextlib.suppress(ValueError):
                expanded["text"] = json.loads(text)
        return expanded
    if isinstance(value, list | tuple):
        return [_expand_json_text(item) for item in value]
    return value


def _node(value: Any, label: str, depth: int) -> Markup:
    key = Markup('<span class="key">{}</span>: ').format(label) if label else Markup("")
    if isinstance(value, Mapping) and value and depth < MAX_DEPTH:
        items = [_node(item, str(name), depth + 1) for name, item in value.items()]
        return _folder(key, f"{{{len(items)}}}", items, depth)
    if isinstance(value, list | tuple) and value and depth < MAX_DEPTH:
        items = [_node(item, "", depth + 1) for item in value]
        return _folder(key, f"[{len(items)}]", items, depth)
    return Markup('<div class="leaf">{}{}</div>').format(key, _scalar(value))


def _folder(key: Markup, size: str, items: list[Markup], depth: int) -> Markup:
    opened = " open" if depth < OPEN_DEPTH and len(items) <= MAX_OPEN_ITEMS else ""
    body = Markup("").join(Markup("<li>{}</li>").format(item) for item in items)
    return Markup('<details{}><summary>{}<span class="size">{}</span></summary><ul>{}</ul></details>').format(
        Markup(opened), key, size, body
    )


def _scalar(value: Any) -> Markup:
    if value == "":
        return Markup('<span class="lit">""</span>')
    if isinstance(value, str):
        kind = "masked" if value == MASK or value.startswith("[REDACTED") or "[REDACTED:" in value else "str"
        return Markup('<span class="{}">{}</span>').format(kind, value)
    if value is None or isinstance(value, bool | int | float):
        return Markup('<span class="lit">{}</span>').format(json.dumps(value))
    return Markup('<span class="str">{}</span>').format(json.dumps(value, ensure_ascii=False, default=str))
