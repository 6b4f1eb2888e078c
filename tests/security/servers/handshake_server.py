"""A hostile MCP server over stdio whose handshake answer is whatever the test gives it.

Run as `python handshake_server.py ERA RESULT_FILE`: ERA `handshake` refuses `server/discover`
(so the client falls back to `initialize`) and answers `initialize` with the JSON in
RESULT_FILE; ERA `modern` answers `server/discover` with it. No SDK: the answer is written as
given, whatever its shape. `tools/list` is answered empty; other requests get METHOD_NOT_FOUND.
"""

from __future__ import annotations

import json
import sys

ERA, RESULT = sys.argv[1], json.loads(open(sys.argv[2], encoding="utf-8").read())  # noqa: SIM115
OPENING = "server/discover" if ERA == "modern" else "initialize"


def reply(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    request = json.loads(line)
    if "id" not in request:
        continue
    if request.get("method") == OPENING:
        reply({"jsonrpc": "2.0", "id": request["id"], "result": RESULT})
    elif request.get("method") == "tools/list":
        reply({"jsonrpc": "2.0", "id": request["id"], "result": {"tools": []}})
    else:
        reply({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": "Method not found"}})
