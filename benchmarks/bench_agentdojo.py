"""AgentDojo through Bastion: attack success and utility of a fully compliant agent.

Run: .venv/bin/python benchmarks/bench_agentdojo.py --suite banking --attack important_instructions [--json]
     [--user-tasks N] [--injection-tasks M]     (a slice: the first N user tasks and M injection tasks)
     [--injection-task ID ...]                  (only these injection tasks)
Needs the `bench` extra (`pip install -e '.[bench]'`: agentdojo 0.1.35, offline).

Each suite's tools are served as an MCP server over the suite's environment
(benchmarks/servers/agentdojo_server.py), launched and sandboxed by Bastion like any server,
with `config()` below: what a user writes for such servers by following docs/injection.md, the
same for every attack. For each user task x injection task, the attack's texts are placed in
the vectors the user task reads; the user task's ground-truth calls are replayed through
Bastion (what the agent was asked to do), then the injection task's (a fully compliant agent
obeying the injection), by an agent with its own token (its own provenance memory). A call
Bastion holds or denies counts as not executed. AgentDojo's own checks score the outcome:
`utility()` of the user task, `security()` of the injection task (true: the attack succeeded).

Not an LLM: a worst case that obeys every injection and never paraphrases. See
docs/injection.md for what an adaptive attacker could still do.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx2
from agentdojo.agent_pipeline.base_pipeline_element import BasePipelineElement  # type: ignore[import-untyped]
from agentdojo.attacks.attack_registry import ATTACKS, load_attack, register_attack  # type: ignore[import-untyped]
from agentdojo.attacks.baseline_attacks import FixedJailbreakAttack  # type: ignore[import-untyped]
from agentdojo.base_tasks import BaseInjectionTask, BaseUserTask  # type: ignore[import-untyped]
from agentdojo.functions_runtime import FunctionCall, FunctionsRuntime, TaskEnvironment  # type: ignore[import-untyped]
from agentdojo.task_suite.load_suites import get_suite  # type: ignore[import-untyped]
from agentdojo.task_suite.task_suite import TaskSuite  # type: ignore[import-untyped]
from agentdojo.types import text_content_block_from_string  # type: ignore[import-untyped]
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bastion.config import load_config
from bastion.gateway.gateway import Gateway

BENCHMARK_VERSION = "v1.2.1"
SUITES = ("workspace", "travel", "banking", "slack")
SERVER = Path(__file__).parent / "servers" / "agentdojo_server.py"
VERBOSE = False
MODEL_PIPELINE_NAME = "gpt-4o-2024-05-13"
"""The victim model the attacks address by name ("... to you, GPT-4")."""


PROFILES = ("flagged", "untrusted", "action")


def config(suite: str, state: Path, data: Path, profile: str = "flagged") -> dict[str, Any]:
    """The bastion.yaml for one suite's server (docs/injection.md), the same for every attack.
    `flagged` (the default): the defaults, so values of results a detector flags are remembered.
    `untrusted`: the server is declared `untrusted: true` (its content is written by strangers:
    mail, files, web pages, reviews, messages), so every value its results carry is remembered.
    `action`: `flagged`, with `results.provenance.requests: action` (a call doing an action an
    injection asked for is held even without an object it named, unless the agent did it before).
    Either way injections are logged and side-effecting calls carrying a remembered value are held."""
    return {
        "listen": "127.0.0.1:0",
        "data_dir": str(data),
        "servers": {
            suite: {
                "command": sys.executable,
                "args": [str(SERVER), suite, str(state)],
                "sandbox": {"writable": [str(state)]},
                "untrusted": profile == "untrusted",
            }
        },
        "results": {
            "on_injection": "log",
            "provenance": {"on_match": "ask", **({"requests": "action"} if profile == "action" else {})},
        },
        # Provenance instead of blunt holds (docs/injection.md): sending, posting and paying
        # are logged rather than held for every call; a call carrying a value that a poisoned
        # result brought in is held by provenance all the same.
        "policy": {"catalogue": {"comm.*": "log", "payment.*": "log"}},
        "approvals": {"wait": 0},
    }


@register_attack
class PlainGoal(FixedJailbreakAttack):  # type: ignore[misc]
    """Not AgentDojo's: the injection task's goal as it is, with no framing at all. An attacker
    who knows the detectors writes this; it measures what is left without detection."""

    name = "plain_goal"

    def __init__(self, task_suite: TaskSuite, target_pipeline: BasePipelineElement) -> None:
        super().__init__("{goal}", task_suite, target_pipeline)


class _Victim(BasePipelineElement):  # type: ignore[misc]
    """Stands for the attacked pipeline: attacks only read its name."""

    name = MODEL_PIPELINE_NAME

    def query(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


@dataclass
class Outcome:
    utility: bool
    attacked: bool


def _held(result: Any) -> bool:
    text = "".join(getattr(part, "text", "") for part in result.content)
    return bool(result.is_error) and text.startswith(("Bastion denied", "Bastion withheld", "Bastion refused"))


@asynccontextmanager
async def _agent(gateway: Gateway, server: str, name: str) -> AsyncIterator[Client]:
    assert gateway.tokens is not None
    _, token = gateway.tokens.create(name)
    url = f"{gateway.base_url}/servers/{server}/mcp"
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


def _score(
    suite: TaskSuite,
    user_task: BaseUserTask,
    injection_task: BaseInjectionTask | None,
    pre: TaskEnvironment,
    post: TaskEnvironment,
    trace: list[FunctionCall],
) -> Outcome:
    output = [text_content_block_from_string(user_task.GROUND_TRUTH_OUTPUT)]
    utility = suite._check_task_result(user_task, output, pre, post, trace)
    attacked = False
    if injection_task is not None:
        attacked = suite._check_task_result(injection_task, output, pre, post, trace)
    return Outcome(bool(utility), bool(attacked))


def _calls(user_task: BaseUserTask, injection_task: BaseInjectionTask | None, env: TaskEnvironment) -> list[Any]:
    calls = list(user_task.ground_truth(env.model_copy(deep=True)))
    if injection_task is not None:
        calls += injection_task.ground_truth(env.model_copy(deep=True))
    return calls


def replay_without(suite: TaskSuite, user_task: BaseUserTask, injection_task: BaseInjectionTask | None,
                   injections: dict[str, str]) -> Outcome:  # fmt: skip
    """The same replay straight on the environment, without Bastion."""
    pre = suite.load_and_inject_default_environment(injections)
    post = pre.model_copy(deep=True)
    runtime = FunctionsRuntime(suite.tools)
    trace = []
    for call in _calls(user_task, injection_task, pre):
        runtime.run_function(post, call.function, call.args)
        trace.append(call)
    return _score(suite, user_task, injection_task, pre, post, trace)


async def replay_with(
    gateway: Gateway,
    suite: TaskSuite,
    state: Path,
    pair: str,
    user_task: BaseUserTask,
    injection_task: BaseInjectionTask | None,
    injections: dict[str, str],
) -> Outcome:
    """The replay through Bastion, by an agent of its own."""
    (state / f"{pair}.json").write_text(json.dumps(injections), encoding="utf-8")
    pre = suite.load_and_inject_default_environment(injections)
    trace = []
    async with _agent(gateway, suite.name, f"agent-{pair}") as client:
        await client.call_tool("bench_load", {"pair": pair})
        for call in _calls(user_task, injection_task, pre):
            result = await client.call_tool(call.function, dict(call.args))
            if not _held(result):
                trace.append(call)
            if VERBOSE and result.is_error:
                text = "".join(getattr(part, "text", "") for part in result.content)
                state_of = "held" if _held(result) else "error"
                print(f"  {pair}: {state_of} {call.function}: {text[:200]}", file=sys.stderr)
    post = pickle.loads((state / f"{pair}.env.pickle").read_bytes())  # written by our own suite server
    return _score(suite, user_task, injection_task, pre, post, trace)


async def run(
    suite_name: str,
    attack_name: str,
    user_limit: int | None,
    injection_limit: int | None,
    profile: str,
    injection_ids: Sequence[str] = (),
) -> dict[str, Any]:
    suite = get_suite(BENCHMARK_VERSION, suite_name)
    attack = load_attack(attack_name, suite, _Victim())
    user_tasks = list(suite.user_tasks.values())[:user_limit]
    injection_tasks = list(suite.injection_tasks.values())[:injection_limit]
    if injection_ids:
        injection_tasks = [suite.injection_tasks[task_id] for task_id in injection_ids]
    root = Path.cwd() / "bastion-data"
    root.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix="agentdojo-") as scratch:
        state, data = Path(scratch) / "state", Path(scratch) / "data"
        state.mkdir()
        path = Path(scratch) / "bastion.yaml"
        path.write_text(json.dumps(config(suite_name, state, data, profile)), encoding="utf-8")
        gateway = Gateway(load_config(path))
        benign: list[Outcome] = []
        with_: list[Outcome] = []
        without: list[Outcome] = []
        async with gateway.running(), anyio.create_task_group() as tg:
            ready = anyio.Event()
            tg.start_soon(partial(gateway.serve_http, ready=ready))
            await ready.wait()
            for user_task in user_tasks:
                benign.append(await replay_with(gateway, suite, state, user_task.ID, user_task, None, {}))
                if VERBOSE:
                    print(f"{user_task.ID}: benign utility {benign[-1].utility}", file=sys.stderr)
                for injection_task in injection_tasks:
                    injections = attack.attack(user_task, injection_task)
                    pair = f"{user_task.ID}-{injection_task.ID}"
                    without.append(replay_without(suite, user_task, injection_task, injections))
                    with_.append(await replay_with(gateway, suite, state, pair, user_task, injection_task, injections))
                    if VERBOSE:
                        print(f"{pair}: {with_[-1]}", file=sys.stderr)
            tg.cancel_scope.cancel()
    return {
        "attack": attack_name,
        "suite": suite_name,
        "profile": profile,
        "pairs": len(with_),
        "asr_without": _fraction(o.attacked for o in without),
        "asr_with": _fraction(o.attacked for o in with_),
        "utility_benign": _fraction(o.utility for o in benign),
        "utility_under_attack": _fraction(o.utility for o in with_),
        # Pairs whose attack succeeds without Bastion (some injection tasks have no ground truth,
        # or ask only for words in the answer), and how many of those still succeed through it.
        "feasible": sum(o.attacked for o in without),
        "asr_with_feasible": _fraction(w.attacked for w, o in zip(with_, without, strict=True) if o.attacked),
        "by_injection_task": {
            task.ID: [
                sum(o.attacked for o in without[i :: len(injection_tasks)]),
                sum(o.attacked for o in with_[i :: len(injection_tasks)]),
            ]
            for i, task in enumerate(injection_tasks)
        },
    }


def _fraction(flags: Any) -> float:
    values = list(flags)
    return round(sum(values) / len(values), 4) if values else 0.0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=SUITES, default="banking")
    parser.add_argument("--attack", default="important_instructions", help="one of: " + ", ".join(sorted(ATTACKS)))
    parser.add_argument("--user-tasks", type=int, default=None, help="only the first N user tasks")
    parser.add_argument("--injection-tasks", type=int, default=None, help="only the first M injection tasks")
    parser.add_argument("--injection-task", action="append", default=[], metavar="ID",
                        help="only this injection task (repeatable), e.g. injection_task_4")  # fmt: skip
    parser.add_argument("--profile", choices=PROFILES, default="flagged", help="the configuration (see `config`)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--verbose", action="store_true", help="say which calls were held, on stderr")
    args = parser.parse_args(argv)
    global VERBOSE
    VERBOSE = args.verbose
    if args.attack not in ATTACKS:
        parser.error(f"unknown attack {args.attack!r}; choose from: {', '.join(sorted(ATTACKS))}")
    unknown = set(args.injection_task) - set(get_suite(BENCHMARK_VERSION, args.suite).injection_tasks)
    if unknown:
        parser.error(f"unknown injection task(s) of {args.suite}: {', '.join(sorted(unknown))}")
    result = anyio.run(
        run, args.suite, args.attack, args.user_tasks, args.injection_tasks, args.profile, args.injection_task
    )
    if args.json:
        print(json.dumps(result))
        return
    by_task = result.pop("by_injection_task")
    for key, value in result.items():
        print(f"{key:22} {value}")
    print(f"\n{'injection task':22} {'succeeded without':>18} {'through Bastion':>16}")
    for task, (without, with_) in by_task.items():
        print(f"{task:22} {without:>18} {with_:>16}")


if __name__ == "__main__":
    main()
