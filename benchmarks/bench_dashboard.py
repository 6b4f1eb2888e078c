"""Server time of each dashboard page, and of filtered audit searches, with 1,000,000 events in the store.

Run: .venv/bin/python benchmarks/bench_dashboard.py [N] [--runs R] [--analyze]
Printed, not asserted. Target (issue 8): under 300 ms each.

SEEDING is not the measured path: rows are built as bench_audit_search.py builds them (one
call = requested, verdict, completed; 5% denied; 30 days ending now) and appended through
the SQLite backend's own chained append in big transactions. By default the database is
left as a running gateway leaves it (no ANALYZE; SQLite's planner then has no statistics);
`--analyze` runs ANALYZE after seeding, as bench_audit_search.py does.

Each request goes through the real dashboard app (sign-in cookie, session check, role check,
store reads, template rendering, security headers) in-process over ASGI, so the time is the
server's own, without a network. 50 pending approvals, 200 agent tokens and 40 pinned tools
fill the other pages.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from bastion.admin.sqlite_tokens import SqliteAdminTokenStore
from bastion.admin.tokens import Role
from bastion.alerts.model import Alert, AlertKind
from bastion.alerts.recent import RecentAlerts
from bastion.approvals.events import ListEventSink
from bastion.approvals.sqlite_store import SqliteApprovalStore
from bastion.audit.chain import EventRow
from bastion.auth.sqlite_tokens import SqliteTokenStore
from bastion.config import load_config
from bastion.gateway.gateway import open_audit
from bastion.guard.pinning import LoggingPinEventSink, SqlitePinStore, fingerprint
from bastion.guard.policy.lint import policy_of
from bastion.upstream.server_status import ServerStatus
from bastion.web.app import Dashboard
from bastion.web.services import DashboardServices
from bench_audit_search import AGENTS, SEED_BATCH, SERVERS, TOOLS, WORDS, seed_rows

BASE = "http://bench.local"
PAGES = [
    ("overview", "/ui/"),
    ("approvals", "/ui/approvals"),
    ("approvals queue (poll)", "/ui/approvals/pending"),
    ("audit (no filter)", "/ui/audit"),
    ("audit event detail", "/ui/audit/events/{seq}"),
    ("servers", "/ui/servers"),
    ("agents", "/ui/agents"),
    ("policy", "/ui/policy"),
]
SEARCHES = [
    ("search agent", lambda n: {"agent": AGENTS[n % len(AGENTS)]}),
    ("search server + tool", lambda n: {"server": SERVERS[n % len(SERVERS)], "tool": TOOLS[n % len(TOOLS)]}),
    ("search type + verdict=deny", lambda n: {"type": "call.verdict", "verdict": "deny"}),
    ("search agent, last 24 h", lambda n: {"agent": AGENTS[n % len(AGENTS)], "range": "24h"}),
    ("search full text", lambda n: {"text": WORDS[n * 7 % len(WORDS)]}),
    ("search text + agent", lambda n: {"text": WORDS[n * 7 % len(WORDS)], "agent": AGENTS[n % len(AGENTS)]}),
    ("search older page (cursor)", lambda n: {"agent": AGENTS[n % len(AGENTS)], "cursor": str(900_000 - n)}),
]


def seed_audit(store: Any, total: int, analyze: bool) -> float:
    backend = store.backend
    conn = backend.connect()
    began = time.perf_counter()
    batch: list[EventRow] = []
    for row in seed_rows(total):
        batch.append(row)
        if len(batch) == SEED_BATCH:
            backend.append(conn, batch, False, False)  # no health row; not fsynced (seeding)
            batch = []
    if batch:
        backend.append(conn, batch, False, False)
    backend.tidy(conn, True)  # the full-text index, as an idle writer brings it up to date
    if analyze:
        conn.execute("ANALYZE")
    backend.discard(conn)
    return time.perf_counter() - began


def fill_small_stores(data: Path) -> tuple[SqliteApprovalStore, SqliteTokenStore, SqliteAdminTokenStore, Any]:
    approvals = SqliteApprovalStore(data / "approvals.db")
    for n in range(50):
        approvals.create(
            agent=AGENTS[n % len(AGENTS)],
            server="db",
            tool="query",
            arguments={"sql": f"SELECT * FROM customers WHERE id > {n}", "limit": 10_000},
            rule="policy/rule:bulk",
            reason="bulk read",
            expire_after=86400,
        )
    tokens = SqliteTokenStore(data / "tokens.db")
    for n in range(200):
        tokens.create(AGENTS[n % len(AGENTS)])
    admin = SqliteAdminTokenStore(data / "admin_tokens.db")
    pins = SqlitePinStore(data / "pins.db")

    async def pin() -> None:
        for n in range(40):
            definition = {"name": TOOLS[n], "description": f"tool {n}", "inputSchema": {"type": "object"}}
            await pins.observe(SERVERS[n % len(SERVERS)], TOOLS[n], fingerprint(definition), definition, ())

    anyio.run(pin)
    return approvals, tokens, admin, pins


async def measure(dashboard: Dashboard, admin_token: str, runs: int, last_seq: int) -> None:
    transport = httpx2.ASGITransport(app=dashboard.app)
    async with httpx2.AsyncClient(transport=transport, base_url=BASE, headers={"origin": BASE}) as http:
        form = await http.get("/ui/login")
        login = re.search(r'name="login_token" value="([0-9a-f]+)"', form.text)
        assert login
        signed = await http.post("/ui/login", data={"token": admin_token, "login_token": login[1]})
        assert signed.status_code == 303, signed.text

        async def timed(label: str, make: Any) -> None:
            timings = []
            for n in range(runs + 2):
                path, params = make(n)
                began = time.perf_counter()
                response = await http.get(path, params=params)
                elapsed = (time.perf_counter() - began) * 1000
                assert response.status_code == 200, (label, response.status_code, response.text[:300])
                if n >= 2:  # the first two warm caches and connections
                    timings.append(elapsed)
            timings.sort()
            p50, p99 = statistics.median(timings), timings[max(0, int(len(timings) * 0.99) - 1)]
            verdict = "ok" if p99 < 300 else "OVER 300 ms"
            print(f"  {label:<30} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   {verdict}")

        for label, path in PAGES:
            await timed(label, lambda n, path=path: (path.format(seq=last_seq - 3 * n), None))
        for label, make in SEARCHES:
            await timed(label, lambda n, make=make: ("/ui/audit", make(n)))
        began = time.perf_counter()
        exported = await http.get("/ui/audit/export", params={"agent": AGENTS[0], "format": "csv"})
        lines = exported.text.count("\n")
        print(f"  {'export CSV (one agent)':<30} {(time.perf_counter() - began) * 1000:8.0f} ms for {lines:,} lines")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("total", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--analyze", action="store_true", help="ANALYZE after seeding (planner statistics)")
    args = parser.parse_args()
    print(
        f"dashboard server time over {args.total:,} audit events; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "data"
        config_path = folder / "bastion.yaml"
        policy = {"rules": [{"name": "bulk", "match": {"tool": "query"}, "action": "ask"}]}
        servers = {name: {"command": "true"} for name in SERVERS}
        config_path.write_text(yaml.safe_dump({"data_dir": str(data), "servers": servers, "policy": policy}))
        config = load_config(config_path)
        store: Any = open_audit(config)
        seconds = seed_audit(store, args.total, args.analyze)
        print(f"SEEDING {args.total:,} chained events: {seconds:.1f} s (ANALYZE: {'yes' if args.analyze else 'no'})")
        approvals, tokens, admin, pins = fill_small_stores(data)
        _, admin_token = admin.create("bench", Role.ADMIN)
        alerts = RecentAlerts()
        for n in range(20):
            alerts.emit(Alert(AlertKind.EGRESS_BLOCKED, f"server-{n} tried evil.example"))
        statuses = [ServerStatus(name, "stdio", "true", "up", True, "none", {"memory": "512M"}) for name in SERVERS]

        async def run() -> None:
            await store.open()
            try:
                services = DashboardServices(
                    config=config,
                    audit=store,
                    approvals=approvals,
                    approval_events=ListEventSink(),
                    admin_tokens=admin,
                    tokens=tokens,
                    policy=policy_of(config),
                    servers=lambda: statuses,
                    alerts=alerts,
                    secret_file=data / "dashboard_secret",
                    pins=pins,
                    pin_events=LoggingPinEventSink(),
                )
                await measure(Dashboard(services), admin_token, args.runs, args.total)
            finally:
                await store.close()

        anyio.run(run)
        for closing in (approvals, tokens, admin, pins):
            closing.close()


if __name__ == "__main__":
    main()
