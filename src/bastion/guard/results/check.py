"""`ResultsCheck`: the guard pipeline's result hook. Each result is scanned for injection and
measured against the record and byte thresholds; a finding is recorded (`result.flagged`),
alerted (`result_flagged`), and the result is then logged, sanitized, held for a person or
withheld, as `results:` says for its server and tool. Values that a flagged result, or any
result of an untrusted server, carried are remembered for provenance.

Fails closed: the pipeline withholds the result of a check that raises.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.alerts.model import Alert, AlertEmitter, AlertKind
from bastion.audit.events import AuditEvent, ResultFlagged
from bastion.compact_json import compact_json
from bastion.guard.off_loop import run_sized
from bastion.guard.pipeline import ApprovalResolver, ContentWithheld, tool_error
from bastion.guard.results.config import ResultsConfig, Settings, SettingsMemo
from bastion.guard.results.content import strings
from bastion.guard.results.findings import ResultFinding
from bastion.guard.results.regions import regions
from bastion.guard.results.requested import RequestedActionCheck
from bastion.guard.results.sanitize import sanitized
from bastion.guard.results.taint import FLAGGED, TaintSource, TaintStore, Whose
from bastion.guard.results.values import trusted, values_in
from bastion.lazy_import import lazy_module
from bastion.model import Decision, ToolCall, Verdict

if TYPE_CHECKING:
    from bastion.guard.results import scan
else:  # the injection detectors and their patterns: loaded by the first result read, not by a gateway's start
    scan = lazy_module("bastion.guard.results.scan")

CHECK_NAME = "results"
HELD_RESULT_KEY = "bastion:held_result"
"""The key added to a held result's approval arguments: the result's digest and why it is held."""
MAX_VALUE_TEXT = 1024 * 1024
"""Characters of a result read for values to remember."""
_STRENGTH = {"log": 0, "sanitize": 1, "ask": 2, "deny": 3}


@dataclass(frozen=True, slots=True)
class Judged:
    """What the check decided about one result: the result to pass on, or why it is withheld."""

    result: Any
    withheld: str | None = None


class ResultsCheck:
    """See the module docstring. `approvals` is set once the approval gate exists."""

    name = CHECK_NAME

    def __init__(
        self,
        config: ResultsConfig,
        *,
        untrusted: frozenset[str] = frozenset(),
        taints: TaintStore | None = None,
        record: Callable[[AuditEvent], None] | None = None,
        alerts: AlertEmitter | None = None,
        clock: Callable[[], float] = time.time,
        requests: RequestedActionCheck | None = None,
    ) -> None:
        self.config = config
        self.requests = requests
        """Told what each flagged result's injected text asks the agent to do (requested.py)."""
        self.untrusted = untrusted
        self.taints = taints
        self.record = record
        self.alerts = alerts
        self.approvals: ApprovalResolver | None = None
        self.clock = clock
        self._settings = SettingsMemo()

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        return None

    async def check_tool_result(self, call: ToolCall, result: dict[str, Any]) -> dict[str, Any] | None:
        judged = await self.judge(call, "tools/call", result)
        if judged.withheld is not None:
            return tool_error(judged.withheld)
        return None if judged.result is result else dict(judged.result)

    async def check_content(self, call: ToolCall, method: str, content: dict[str, Any]) -> dict[str, Any] | None:
        judged = await self.judge(call, method, content)
        if judged.withheld is not None:
            raise ContentWithheld(judged.withheld)
        return None if judged.result is content else dict(judged.result)

    def settings(self, server: str, tool: str | None) -> Settings:
        return self._settings(self.config, server, tool, untrusted=server in self.untrusted)

    async def judge(self, call: ToolCall, method: str, result: Any) -> Judged:
        """Judge a result of `method` (`tools/call`, `resources/read`, `prompts/get`, `sampling/createMessage`)."""
        if not self.config.enabled:
            return Judged(result)
        is_tool = method == "tools/call"
        settings = self.settings(call.server, call.tool if is_tool else None)
        # Reading a large result takes milliseconds: on a worker thread, the event loop serves other agents.
        injection, volume = await run_sized(result, _read, result, settings)
        tainted = 0
        if (injection or settings.untrusted) and self.taints is not None and self.config.provenance.enabled:
            tainted = await self._remember(call, method, result, settings, injection)
        if injection and self.requests is not None:
            await self.requests.remember(call, method, result, injection)
        actions = [settings.on_injection] if injection else []
        actions += [settings.on_oversize] if volume else []
        if not actions:
            return Judged(result)
        action = max(actions, key=_STRENGTH.__getitem__)
        findings = injection + volume
        self._report(call, method, action, findings, tainted)
        summary = _summary(findings)
        source = f"{call.server}/{call.tool}" if is_tool else f"{call.server} ({method})"
        if action == "deny":
            return Judged(result, f"Bastion withheld this result of {source}: {summary} [check: {CHECK_NAME}]")
        if action == "ask":
            return await self._hold(call, result, summary, source)
        if action == "sanitize" and injection:
            return Judged(sanitized(result, injection, source))
        return Judged(result)

    async def _remember(
        self, call: ToolCall, method: str, result: Any, settings: Settings, injection: list[ResultFinding]
    ) -> int:
        assert self.taints is not None
        values: dict[str, None] = {}
        budget = MAX_VALUE_TEXT
        by_path: dict[str, list[ResultFinding]] = {}
        for finding in injection:
            by_path.setdefault(finding.path, []).append(finding)
        for path, text in strings(result):
            if budget <= 0:
                break
            flagged = by_path.get(path)
            if flagged is not None:
                parts = [text[start:end] for start, end in regions(text, flagged)]
            elif settings.untrusted:
                parts = [text]
            else:
                continue
            for part in parts:
                budget -= len(part)
                values.update((value, None) for _, value in values_in(part[:MAX_VALUE_TEXT]))
        kept = [value for value in values if not trusted(value, settings.trusted_values)]
        if injection:
            why = f"{FLAGGED} (" + ", ".join(sorted({f.detector for f in injection})) + ")"
        else:
            why = f"from untrusted server {call.server!r}"
        tool = call.tool if method == "tools/call" else method
        source = TaintSource(call.call_id, call.server, tool, why, self.clock())
        return len(await self.taints.taint(Whose(call.principal.agent, call.session), kept, source))

    async def _hold(self, call: ToolCall, result: Any, summary: str, source: str) -> Judged:
        if self.approvals is None:
            return Judged(result, f"Bastion withheld this result of {source}: {summary}; it needs a person's "
                          f"approval and no approval queue is running [check: {CHECK_NAME}]")  # fmt: skip
        digest = hashlib.sha256(compact_json(result).encode()).hexdigest()[:16]
        held = dataclasses.replace(call, arguments={**call.arguments, HELD_RESULT_KEY: f"sha256:{digest} ({summary})"})
        asked = Verdict(Decision.ASK, f"result held: {summary}", check=CHECK_NAME)
        verdict = await self.approvals.resolve(held, asked)
        if verdict.allowed:
            return Judged(result)
        return Judged(result, f"Bastion withheld this result of {source} (the upstream ran): {verdict.reason} "
                      f"[check: {CHECK_NAME}]")  # fmt: skip

    def _report(self, call: ToolCall, method: str, action: str, findings: list[ResultFinding], tainted: int) -> None:
        detectors = tuple(sorted({f.detector for f in findings}))
        texts = tuple(str(f) for f in findings[:20])
        tool = call.tool if method == "tools/call" else None
        if self.record is not None:
            self.record(
                ResultFlagged(
                    agent=call.principal.agent,
                    server=call.server,
                    correlation_id=call.call_id,
                    method=method,
                    tool=tool,
                    action=action,
                    detectors=detectors,
                    findings=texts,
                    tainted=tainted,
                )
            )
        if self.alerts is not None:
            what = f"{call.server}/{call.tool}" if tool else f"{call.server} {method}"
            summary = f"result of {what} for {call.principal.agent} flagged ({', '.join(detectors)}): {action}"
            details = {
                "agent": call.principal.agent,
                "server": call.server,
                "tool": tool,
                "method": method,
                "correlation_id": call.call_id,
                "action": action,
                "detectors": list(detectors),
                "findings": list(texts[:5]),
            }
            self.alerts.emit(Alert(AlertKind.RESULT_FLAGGED, summary, details))


def _read(result: Any, settings: Settings) -> tuple[list[ResultFinding], list[ResultFinding]]:
    """The injection findings in `result`, and the thresholds it is over."""
    injection = scan.scan_result(result)
    volume = []
    if isinstance(result, Mapping):
        volume = scan.volume_findings(result, settings.max_records, settings.max_bytes)
    return injection, volume


def _summary(findings: list[ResultFinding]) -> str:
    injection = sorted({f.detector for f in findings if not f.detector.startswith("volume.")})
    parts = [f.excerpt for f in findings if f.detector.startswith("volume.")]
    if injection:
        parts.insert(0, "it looks like instructions to the assistant (" + ", ".join(injection) + ")")
    return "; ".join(parts)
