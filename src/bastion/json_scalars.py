"""The JSON value types that hold no string, for walks over decoded values that compare exact types."""

from __future__ import annotations

JSON_SCALARS: frozenset[type] = frozenset({int, float, bool, type(None)})
"""Numbers, booleans and null: a walk skips a value whose `type(...)` is one of these without an `isinstance`
check against `Mapping` (an ABC, a slow trip through `abc` for every value)."""
