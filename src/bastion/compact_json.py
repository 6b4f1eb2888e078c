"""Compact JSON text, as the audit log stores, sizes and exports values."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

compact_json: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
"""`json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)`, without building
an encoder per call (what `json.dumps` does when given any option). Raises ValueError on a
circular reference."""
