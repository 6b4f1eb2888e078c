"""Imports point one way: no import circles among Bastion's modules, and the low rooms never
import the rooms above them (docs/architecture.md). Every import counts, including those made
inside functions and under `TYPE_CHECKING`: a circle hidden there is still a circle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import bastion

SRC = Path(bastion.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


GRAPH = {
    name: sorted({target for target in _imports(name, path) if target in MODULES and target != name})
    for name, path in MODULES.items()
}


def _circles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    assert _circles() == []


FLOORS: list[tuple[str, ...]] = [
    ("bastion.cli",),
    ("bastion.gateway",),  # the composition root: nothing but the commands stands above it
    ("bastion.front",),
    ("bastion.relay",),
    ("bastion.web", "bastion.proxy", "bastion.stores"),
    ("bastion.auth", "bastion.upstream"),
    ("bastion.config",),
    ("bastion.observability",),
    ("bastion.admin",),
    ("bastion.guard",),
    ("bastion.approvals",),
    ("bastion.alerts",),
    ("bastion.runtime",),
    ("bastion.audit",),
    ("bastion.state",),
]
"""The rooms floor by floor, from the top (docs/architecture.md): a room imports only rooms on
floors below its own."""

NEVER: list[tuple[str, tuple[str, ...]]] = [
    ("bastion.model", ("bastion.",)),
    *(
        (room, tuple(above for floor in FLOORS[:level] for above in floor))
        for level, rooms in enumerate(FLOORS)
        for room in rooms
        if level
    ),
]


@pytest.mark.parametrize(("room", "above"), NEVER, ids=[room for room, _ in NEVER])
def test_a_room_never_imports_the_rooms_above_it(room: str, above: tuple[str, ...]) -> None:
    def within(name: str, prefix: str) -> bool:
        return name == prefix.rstrip(".") or name.startswith(prefix if prefix.endswith(".") else prefix + ".")

    upward = [
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if within(name, room)
        for target in targets
        if any(within(target, prefix) for prefix in above) and not within(target, room)
    ]
    assert upward == []
