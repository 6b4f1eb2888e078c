"""The composition root (issue 17): `Gateway(config)` builds nothing, `running()` builds every
part in one place (`gateway/compose.py: assemble`) and closes what it opened, and a part that
refuses the configuration does so before the audit log is opened; `bastion up` then says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.audit.query import EventQuery
from bastion.config import BastionConfig, ConfigError, load_config
from bastion.gateway.gateway import Gateway
from bastion.model import Principal

pytestmark = pytest.mark.anyio

BASTION = str(Path(sys.executable).parent / "bastion")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _config_file(folder: Path, **extra: Any) -> Path:
    data = {"listen": "127.0.0.1:0", "data_dir": str(folder / "data"), "servers": {}, **extra}
    file = folder / "bastion.yaml"
    file.write_text(yaml.safe_dump(data), encoding="utf-8")
    return file


def _config(folder: Path, **extra: Any) -> BastionConfig:
    return load_config(_config_file(folder, **extra))


def test_constructing_a_gateway_opens_nothing(tmp_path: Path) -> None:
    gateway = Gateway(_config(tmp_path))
    assert not (tmp_path / "data").exists()
    assert not hasattr(gateway, "audit")  # built by running()


async def test_running_builds_every_part_and_the_audit_log_outlives_it(tmp_path: Path) -> None:
    gateway = Gateway(_config(tmp_path))
    async with gateway.running():
        built = [gateway.tokens, gateway.approvals, gateway.admin_tokens, gateway.admin_api, gateway.dashboard]
        built += [gateway.aggregate, gateway.list_changes, gateway.supervising]
        assert None not in built
        assert gateway.pipeline.approvals is not None  # the approval gate, given once the store is open
        report = await gateway.readiness()
        assert report["audit_store"] == "writable"
    # Closed, the audit log can still be read (tests read it after the gateway stopped).
    [loaded] = list(gateway.audit.rows(EventQuery(types=("config.loaded",)), newest_first=False))
    assert loaded is not None


async def test_wrap_builds_no_dashboard(tmp_path: Path) -> None:
    gateway = Gateway(_config(tmp_path), local_principal=Principal("local:test", via="local"))
    async with gateway.running():
        assert gateway.admin_api is not None
        assert gateway.dashboard is None


async def test_a_refused_configuration_stops_the_start_before_the_audit_log_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "bastion.observability.tracing", None)  # as if OpenTelemetry were missing
    gateway = Gateway(_config(tmp_path, observability={"tracing": {"enabled": True}}))
    with pytest.raises(ConfigError, match="OpenTelemetry is not installed"):
        async with gateway.running():
            pytest.fail("the gateway started")
    assert not (tmp_path / "data" / "audit.db").exists()


def test_bastion_up_reports_a_refused_configuration_as_a_config_error(tmp_path: Path) -> None:
    """The refusal comes from `running()` now, not from `Gateway(config)`: still `error: ...`, exit 2."""
    hidden = tmp_path / "no_otel" / "opentelemetry"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("hidden by the test")\n', encoding="utf-8")
    config_file = _config_file(tmp_path, observability={"tracing": {"enabled": True}})
    done = subprocess.run(
        [BASTION, "up", "--config", str(config_file)],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(hidden.parent)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error: " in done.stderr, done.stderr
    assert "OpenTelemetry is not installed" in done.stderr, done.stderr


_WRAP_LOADS = """
import sys
from pathlib import Path

import anyio

import bastion.cli.main
import bastion.relay.relay
import bastion.relay.stdio_front
from bastion.config import config_for_wrap
from bastion.gateway.gateway import Gateway
from bastion.model import Principal

config = config_for_wrap(["server"]).model_copy(update={"data_dir": Path(sys.argv[1]), "servers": {}})


async def main() -> None:
    async with Gateway(config, local_principal=Principal("local:test", via="local")).running():
        pass


anyio.run(main)
print(" ".join(sorted(sys.modules)))
"""

_HTTP_ONLY = ("uvicorn", "starlette.applications", "starlette.routing", "httpx2", "httpcore2", "yaml", "jinja2")
"""Loaded by `bastion up` (its HTTP front door, admin API, dashboard), an HTTP upstream, a webhook or a
config file; a `bastion wrap -- CMD` needs none of them before it answers `initialize`."""


def test_wrap_loads_no_http_stack_nor_yaml(tmp_path: Path) -> None:
    """Each of these cost `bastion wrap`'s start (every agent start pays it, once per server)."""
    done = subprocess.run(
        [sys.executable, "-c", _WRAP_LOADS, str(tmp_path / "data")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "bastion.gateway.compose" in loaded
    assert not loaded & set(_HTTP_ONLY), sorted(loaded & set(_HTTP_ONLY))
