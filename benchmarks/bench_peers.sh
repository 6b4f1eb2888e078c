#!/usr/bin/env bash
# Bastion beside the direct call and the peers people would pick instead, in one run.
#
#   bash benchmarks/bench_peers.sh              # ~4 min on a quiet host; prints the peers table
#   PEERS="direct-stdio direct-http mcp-proxy" bash benchmarks/bench_peers.sh   # fewer peers
#
# Uses ../shared/bench (setup.sh once, then peers.sh) with Bastion in its slot, on Bastion's
# defaults: audit durability `power`, the recommended policy, tool pinning, the sandbox. Rows:
# `bastion` (Streamable HTTP front door, /servers/echo/mcp) and `bastion-stdio` (`bastion wrap`).
# Knobs are peers.sh's (N, C, T, ROUNDS, MODE, RESULTS); BENCH_DIR (default ../shared/bench);
# DURABILITY=process puts `audit.durability: process` in the `bastion` row's config (not the default:
# the write-ahead record is then not fsynced; see docs/audit.md), for comparison only.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BENCH_DIR="${BENCH_DIR:-$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd || true)}"
[ -n "$BENCH_DIR" ] && [ -f "$BENCH_DIR/peers.sh" ] || { echo "bench_peers: no ../shared/bench/peers.sh (set BENCH_DIR)" >&2; exit 2; }
BASTION="${BASTION:-$ROOT/.venv/bin/bastion}"
[ -x "$BASTION" ] || { echo "bench_peers: $BASTION not found: run scripts/test once, or set BASTION" >&2; exit 2; }
CLIENT_VENV="${BENCH_VENV_CLIENT:-/tmp/bench-venv-client}"
[ -x "$CLIENT_VENV/bin/python" ] || bash "$BENCH_DIR/setup.sh"

WORK="$(mktemp -d /tmp/bastion-peers.XXXXXX)"
chmod 700 "$WORK"
trap 'rm -rf "$WORK"' EXIT
UPSTREAM_PY="$CLIENT_VENV/bin/python"
cat > "$WORK/bench.yaml" <<YAML
listen: 127.0.0.1:\${BENCH_PORT:-8750}
data_dir: $WORK/data
servers:
  echo:
    command: $UPSTREAM_PY
    args: [$BENCH_DIR/upstream_echo.py]
    sandbox:
      read_only: [$CLIENT_VENV, $BENCH_DIR]
YAML
if [ -n "${DURABILITY:-}" ]; then
  printf 'audit:\n  durability: %s\n' "$DURABILITY" >> "$WORK/bench.yaml"
fi
TOKEN="$("$BASTION" token create --config "$WORK/bench.yaml" --agent bench | tail -n 1)"
export TARGET_NAME=bastion
export TARGET_START="env BENCH_PORT={PORT} $BASTION up --config $WORK/bench.yaml"
export TARGET_URL='http://127.0.0.1:{PORT}/servers/echo/mcp'
export TARGET_TOKEN="$TOKEN"
export TARGET_CMD="env BASTION_DATA_DIR=$WORK/wrap-data $BASTION wrap --read-only $CLIENT_VENV --read-only $BENCH_DIR -- {UPSTREAM}"
export PEERS="${PEERS:-direct-stdio direct-http mcp-proxy supergateway}"
bash "$BENCH_DIR/peers.sh"
