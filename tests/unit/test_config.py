"""bastion.yaml: loading, defaults, interpolation, and errors that name the file, line, key and fix."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from bastion.alerts.config import AlertsConfig, WebhookConfig
from bastion.approvals.config import ApprovalsConfig
from bastion.config import (
    AgentConfig,
    AuditConfig,
    AuthConfig,
    BastionConfig,
    ConfigError,
    HttpServerConfig,
    JwtConfig,
    PinningConfig,
    StdioServerConfig,
    config_for_wrap,
    default_config_text,
    load_config,
)
from bastion.config_aggregate import ToolOverride, VirtualServerConfig
from bastion.config_audit import RetentionConfig
from bastion.guard.ratelimit.config import LimitsConfig, ToolLimitConfig
from bastion.guard.results.config import ProvenanceConfig, ResultRule, ResultsConfig
from bastion.observability.config import MetricsConfig, ObservabilityConfig, TracingConfig
from bastion.runtime.config import HealthConfig, RestartConfig, SandboxConfig

DOCS = Path(__file__).parents[2] / "docs" / "configuration.md"
SECRET = "s" * 32


def write(tmp_path: Path, text: str, name: str = "bastion.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> BastionConfig:
    return load_config(write(tmp_path, text), environ=env or {})


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, env)
    return info.value


def test_example_config_loads(tmp_path: Path) -> None:
    config = load(tmp_path, default_config_text())
    assert set(config.servers) == {"time"}
    time = config.servers["time"]
    assert isinstance(time, StdioServerConfig)
    assert (time.kind, time.command, time.args) == ("stdio", "mcp-server-time", ())


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "servers: {time: {command: mcp-server-time}}")
    assert (config.listen, config.host, config.port) == ("127.0.0.1:8750", "127.0.0.1", 8750)
    assert config.base_url == "http://127.0.0.1:8750"
    assert config.data_dir == (tmp_path / "bastion-data").resolve()
    assert config.source == tmp_path / "bastion.yaml"
    assert config.public_url is None
    assert config.max_body_bytes == 4 * 1024 * 1024
    assert config.audit == AuditConfig(on_failure="refuse")
    assert config.agents == {}
    assert config.auth == AuthConfig(jwt=None)
    assert config.servers["time"] == StdioServerConfig(command="mcp-server-time", args=(), env={}, cwd=None, timeout=60)


def test_empty_sections_and_agent_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "servers: {}\nagents: {ops-bot: , audit-bot: {}, none-bot: {servers: []}}")
    assert config.servers == {}
    assert config.agents == {
        "ops-bot": AgentConfig(servers=None),
        "audit-bot": AgentConfig(servers=None),
        "none-bot": AgentConfig(servers=frozenset()),
    }


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    (tmp_path / "etc" / "idp.pem").parent.mkdir()
    (tmp_path / "etc" / "idp.pem").write_text("-----BEGIN PUBLIC KEY-----\n")
    path = write(
        tmp_path,
        """
        data_dir: state
        servers:
          files: {command: npx, cwd: ../srv}
          abs: {command: npx, cwd: /srv}
        auth: {jwt: {issuer: i, audience: a, public_key_file: idp.pem}}
        """,
        "etc/bastion.yaml",
    )
    config = load_config(Path("..") / "etc" / "bastion.yaml", environ={})
    assert config.source == path.absolute() or config.source.resolve() == path.resolve()
    assert config.data_dir == (tmp_path / "etc" / "state").resolve()
    files, absolute = config.servers["files"], config.servers["abs"]
    assert isinstance(files, StdioServerConfig)
    assert isinstance(absolute, StdioServerConfig)
    assert files.cwd == (tmp_path / "srv").resolve()
    assert absolute.cwd == Path("/srv").resolve()
    assert config.auth.jwt is not None
    assert config.auth.jwt.public_key_file == (tmp_path / "etc" / "idp.pem").resolve()


@pytest.mark.parametrize(
    ("listen", "host", "port", "base_url"),
    [
        ("127.0.0.1:8750", "127.0.0.1", 8750, "http://127.0.0.1:8750"),
        ("0.0.0.0:9000", "0.0.0.0", 9000, "http://0.0.0.0:9000"),
        ("'[::1]:8750'", "::1", 8750, "http://[::1]:8750"),
        ("'[::]:80'", "::", 80, "http://[::]:80"),
        ("localhost:0", "localhost", 0, "http://localhost:0"),
    ],
)
def test_listen(tmp_path: Path, listen: str, host: str, port: int, base_url: str) -> None:
    config = load(tmp_path, f"listen: {listen}")
    assert (config.host, config.port, config.base_url) == (host, port, base_url)


@pytest.mark.parametrize(
    ("public_url", "base_url"),
    [
        ("https://bastion.example.com", "https://bastion.example.com"),
        ("https://bastion.example.com/", "https://bastion.example.com"),
        ("https://example.com/bastion/", "https://example.com/bastion"),
    ],
)
def test_public_url_is_the_base_url(tmp_path: Path, public_url: str, base_url: str) -> None:
    assert load(tmp_path, f"public_url: {public_url}").base_url == base_url


def test_url_servers(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        servers:
          crm: {url: "https://crm.internal/mcp", headers: {Authorization: "Bearer t"}, timeout: 2.5}
          legacy: {url: "http://x/sse", transport: sse}
        """,
    )
    crm, legacy = config.servers["crm"], config.servers["legacy"]
    assert crm == HttpServerConfig(url="https://crm.internal/mcp", headers={"Authorization": "Bearer t"}, timeout=2.5)
    assert (crm.kind, crm.transport) == ("http", "streamable-http")
    assert isinstance(legacy, HttpServerConfig)
    assert legacy.transport == "sse"
    assert legacy.health == HealthConfig(interval=30.0, timeout=10.0)  # health-checked by default


def test_url_servers_take_a_health_check_but_no_restart_policy(tmp_path: Path) -> None:
    config = load(tmp_path, "servers: {crm: {url: 'https://x/mcp', health: {interval: 5, timeout: 1.5}}}")
    assert config.servers["crm"].health == HealthConfig(interval=5, timeout=1.5)
    with pytest.raises(ConfigError, match="interval"):
        load(tmp_path, "servers: {crm: {url: 'https://x/mcp', health: {interval: 0}}}")
    with pytest.raises(ConfigError, match="restart"):  # Bastion does not run the server: nothing to restart
        load(tmp_path, "servers: {crm: {url: 'https://x/mcp', restart: {backoff: 1}}}")


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("${A}", {"A": ""}, ""),
        ("${A:-dflt}", {}, "dflt"),
        ("${A:-dflt}", {"A": ""}, "dflt"),
        ("${A:-dflt}", {"A": "set"}, "set"),
        ("${A:-}", {}, ""),
        ("Bearer ${A}-${B_2}", {"A": "1", "B_2": "2"}, "Bearer 1-2"),
        ("a$$b", {}, "a$b"),
        ("$${A}", {"A": "x"}, "${A}"),
        ("$HOME and a lone $", {}, "$HOME and a lone $"),
        ("${A}", {"A": "x: [y, {z"}, "x: [y, {z"),
        ("${A}", {"A": "${B}"}, "${B}"),
    ],
)
def test_env_interpolation(tmp_path: Path, value: str, env: dict[str, str], expected: str) -> None:
    config = load(tmp_path, f"servers: {{crm: {{url: 'https://x/mcp', headers: {{X: {json.dumps(value)}}}}}}}", env)
    crm = config.servers["crm"]
    assert isinstance(crm, HttpServerConfig)
    assert crm.headers == {"X": expected}


def test_env_interpolation_reaches_every_string_value(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        listen: ${HOST:-127.0.0.1}:${PORT}
        data_dir: ${STATE}
        max_body_bytes: ${MAX:-1024}
        servers:
          files: {command: "${NPX}", args: ["-y", "${PKG}"], env: {TOKEN: "${TOKEN}"}, timeout: "${T:-30}"}
        """,
        {"PORT": "9000", "STATE": "/var/lib/b", "NPX": "npx", "PKG": "server-fs", "TOKEN": "t0k"},
    )
    assert (config.host, config.port, config.data_dir) == ("127.0.0.1", 9000, Path("/var/lib/b").resolve())
    assert config.max_body_bytes == 1024
    assert config.servers["files"] == StdioServerConfig(
        command="npx", args=("-y", "server-fs"), env={"TOKEN": "t0k"}, timeout=30
    )


def test_missing_env_var_names_the_key_and_line(tmp_path: Path) -> None:
    error = error_of(
        tmp_path,
        """\
        servers:
          crm:
            url: https://crm.internal/mcp
            headers: {Authorization: "Bearer ${CRM_TOKEN}"}
        """,
    )
    assert (error.key, error.line) == ("servers.crm.headers.Authorization", 4)
    assert "`CRM_TOKEN` is not set" in error.problem
    assert "${CRM_TOKEN:-" in error.fix


@pytest.mark.parametrize("value", ["${1A}", "${A", "${A-b}", "${}"])
def test_malformed_reference_is_an_error(tmp_path: Path, value: str) -> None:
    error = error_of(tmp_path, f"public_url: {json.dumps(value)}")
    assert error.key == "public_url"
    assert "$$" in error.fix


# (case, yaml, key, line, fragments that must appear in str(error))
ERRORS = [
    ("unknown top-level key", "listen: 127.0.0.1:1\nlisen: x\n", "lisen", 2, ["unknown key `lisen`", "`listen`?"]),
    (
        "unknown stdio key",
        "servers:\n  t:\n    command: x\n    arg: [a]\n",
        "servers.t.arg",
        4,
        ["unknown key `arg`", "did you mean `args`?", "command, args, env, cwd, timeout"],
    ),
    (
        "url key on a stdio server",
        "servers: {t: {command: x, transport: sse}}",
        "servers.t.transport",
        1,
        ["unknown key `transport`", "allowed keys here: command, args"],
    ),
    (
        "unknown url server key",
        "servers: {t: {url: 'http://x', header: {}}}",
        "servers.t.header",
        1,
        ["did you mean `headers`?", "url, transport, headers, timeout"],
    ),
    ("unknown audit key", "audit: {on_fail: allow}", "audit.on_fail", 1, ["did you mean `on_failure`?"]),
    (
        "both command and url",
        "servers: {t: {command: x, url: 'http://x'}}",
        "servers.t",
        1,
        ["both `command` and `url`"],
    ),
    ("neither command nor url", "servers: {t: {args: [a]}}", "servers.t", 1, ["neither `command` nor `url`"]),
    ("server not a mapping", "servers: {t: mcp-server-time}", "servers.t", 1, ["must be a mapping"]),
    ("servers not a mapping", "servers: [a, b]", "servers", 1, ["must be a mapping"]),
    ("bad server name", "servers: {My_Server: {command: x}}", "servers.My_Server", 1, ["not a valid server name"]),
    ("server name with slash", "servers: {'a/b': {command: x}}", "servers.a/b", 1, ["not a valid server name"]),
    ("bad agent name", "agents: {'bad bot': {}}", "agents.bad bot", 1, ["not a valid agent name"]),
    ("listen without port", "listen: localhost", "listen", 1, ["host:port"]),
    ("listen port too big", "listen: 1.2.3.4:99999", "listen", 1, ["0 to 65535"]),
    ("listen IPv6 without brackets", "listen: '::1:8750'", "listen", 1, ["needs brackets", "[::1]:8750"]),
    ("listen bad IPv6", "listen: '[zz]:1'", "listen", 1, ["not an IPv6 address"]),
    ("listen not text", "listen: 8750", "listen", 1, ["must be text"]),
    ("url scheme", "servers: {crm: {url: 'ftp://crm/mcp'}}", "servers.crm.url", 1, ["http:// or https://"]),
    ("url without host", "servers: {crm: {url: 'https:///mcp'}}", "servers.crm.url", 1, ["http:// or https://"]),
    ("public_url query", "public_url: 'https://b.example?x=1'", "public_url", 1, ["?query"]),
    ("empty command", "servers: {t: {command: ' '}}", "servers.t.command", 1, ["is empty"]),
    ("args not a list", "servers: {t: {command: x, args: '-y a'}}", "servers.t.args", 1, ["must be a list"]),
    ("env value not text", "servers: {t: {command: x, env: {PORT: 8080}}}", "servers.t.env.PORT", 1, ["quote"]),
    ("args item not text", "servers: {t: {command: x, args: [a, 1]}}", "servers.t.args[1]", 1, ["must be text"]),
    ("zero timeout", "servers: {t: {command: x, timeout: 0}}", "servers.t.timeout", 1, ["greater than 0"]),
    ("bool timeout", "servers: {t: {command: x, timeout: true}}", "servers.t.timeout", 1, ["not true/false"]),
    ("text timeout", "servers: {t: {command: x, timeout: soon}}", "servers.t.timeout", 1, ["must be a number"]),
    ("bad transport", "servers: {t: {url: 'http://x', transport: ws}}", "servers.t.transport", 1, ["'sse'"]),
    ("bad header", "servers: {t: {url: 'http://x', headers: {'a b': c}}}", "servers.t.headers", 1, ["header name"]),
    ("zero body size", "max_body_bytes: 0", "max_body_bytes", 1, ["greater than 0"]),
    ("bad on_failure", "audit: {on_failure: maybe}", "audit.on_failure", 1, ["'refuse' or 'allow'"]),
    (
        "agent names unknown server",
        "servers:\n  crm: {url: 'http://x'}\nagents:\n  bot: {servers: [crm, nope]}\n",
        "agents.bot.servers",
        4,
        ["`nope`", "not configured", "use one of: crm"],
    ),
    ("agent servers not a list", "agents: {bot: {servers: crm}}", "agents.bot.servers", 1, ["must be a list"]),
    (
        "jwt with two key sources",
        f"auth:\n  jwt:\n    issuer: i\n    audience: a\n    jwks_url: https://i/jwks\n    secret: {SECRET}\n",
        "auth.jwt",
        2,
        ["`jwks_url` and `secret`", "exactly one of"],
    ),
    ("jwt with no key source", "auth: {jwt: {issuer: i, audience: a}}", "auth.jwt", 1, ["no key"]),
    ("jwt missing issuer", "auth: {jwt: {audience: a, jwks_url: 'https://i/k'}}", "auth.jwt.issuer", 1, ["required"]),
    (
        "jwt HMAC algorithm with a public key",
        "auth: {jwt: {issuer: i, audience: a, jwks_url: 'https://i/k', algorithms: [HS256]}}",
        "auth.jwt.algorithms",
        1,
        ["`HS256` cannot be used with `jwks_url`"],
    ),
    (
        "jwt public-key algorithm with a secret",
        f"auth: {{jwt: {{issuer: i, audience: a, secret: {SECRET}, algorithms: [RS256]}}}}",
        "auth.jwt.algorithms",
        1,
        ["`RS256` cannot be used with `secret`"],
    ),
    ("jwt short secret", "auth: {jwt: {issuer: i, audience: a, secret: short}}", "auth.jwt.secret", 1, ["32 bytes"]),
    (
        "jwt key file missing",
        "auth: {jwt: {issuer: i, audience: a, public_key_file: x.pem}}",
        "auth.jwt.public_key_file",
        1,
        ["exist"],
    ),
    ("duplicate key", "servers:\n  t: {command: x}\n  t: {command: y}\n", "servers.t", 3, ["twice (lines 2 and 3)"]),
    ("source is not a YAML key", "source: /etc/x.yaml", "source", 1, ["unknown key `source`"]),
    (
        "virtual server named like a server",
        "servers: {time: {command: x}}\nvirtual_servers: {time: {tools: ['time__*']}}\n",
        "virtual_servers.time",
        2,
        ["the name of a configured server", "rename the virtual server"],
    ),
    (
        "two servers share a prefix",
        "servers:\n  a: {command: x, expose_as: b}\n  b: {command: y}\n",
        "servers.b.expose_as",
        3,
        ["prefix `b` is also the prefix of server `a`"],
    ),
    ("prefix with the separator", "servers: {a: {command: x, expose_as: a__b}}", "servers.a.expose_as", 1, ["`__`"]),
    (
        "tool name no model API takes",
        "servers: {a: {command: x, tools: {t: {expose_as: a.b}}}}",
        "servers.a.tools.t.expose_as",
        1,
        ["not a valid tool name", "1-64 letters"],
    ),
    (
        "two tools exposed by one name",
        "servers:\n  a: {command: x, tools: {t: {expose_as: n}}}\n  b: {command: y, tools: {u: {expose_as: n}}}\n",
        "servers.b.tools.u.expose_as",
        3,
        ["`n` is already the exposed name of tool `t` of server `a`"],
    ),
    (
        "unknown tool override key",
        "servers: {a: {command: x, tools: {t: {hide: true}}}}",
        "servers.a.tools.t.hide",
        1,
        ["`hidden`"],
    ),
    ("virtual server without tools", "virtual_servers: {s: {}}", "virtual_servers.s.tools", 1, ["required"]),
    (
        "two server names that make one prefix",
        "servers:\n  a_b: {command: x}\n  a__b_: {command: y}\n",
        "servers.a__b_.expose_as",
        3,
        ["prefix `a_b` is also the prefix of server `a_b`"],
    ),
    (
        "tool named like another server's",
        "servers:\n  time: {command: x}\n  git: {command: y, tools: {git_log: {expose_as: time__now}}}\n",
        "servers.git.tools.git_log.expose_as",
        3,
        ["`time__now` is a name of server `time`'s tools"],
    ),
]


@pytest.mark.parametrize(("text", "key", "line", "fragments"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_name_the_key_line_and_fix(tmp_path: Path, text: str, key: str, line: int, fragments: list[str]) -> None:
    error = error_of(tmp_path, text)
    assert (error.key, error.line) == (key, line)
    assert error.file == tmp_path / "bastion.yaml"
    message = str(error)
    assert message.startswith(f"{tmp_path / 'bastion.yaml'}:{line}: {key}: ")
    assert " Fix: " in message
    for fragment in fragments:
        assert fragment in message
    assert "pydantic" not in message
    assert "Input should" not in message


def test_error_message_format(tmp_path: Path) -> None:
    error = error_of(tmp_path, "servers: {}\nlisen: x\n")
    assert str(error) == (
        f"{tmp_path / 'bastion.yaml'}:2: lisen: unknown key `lisen`. "
        "Fix: did you mean `listen`? allowed keys here: "
        "listen, data_dir, database_url, public_url, trusted_proxies, max_body_bytes, audit, servers, virtual_servers, "
        "agents, auth, policy, pinning, approvals, alerts, limits, results, metrics, log_format, observability."
    )


def test_every_problem_is_reported_in_file_order(tmp_path: Path) -> None:
    error = error_of(tmp_path, "listen: nope\nservers:\n  t: {command: x, url: 'http://x'}\nmax_body_bytes: 0\n")
    assert [(e.key, e.line) for e in (error, *error.also)] == [
        ("listen", 1),
        ("servers.t", 3),
        ("max_body_bytes", 4),
    ]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("servers:\n  t: {command: x\n", 3, "invalid YAML"),
        ("listen: 1:2\n  servers: x: y\n", 2, "invalid YAML"),
        ("servers:\n\t- a\n", 2, "invalid YAML"),
        ("servers: !!python/object:os.system {}\n", 1, "invalid YAML"),
    ],
)
def test_invalid_yaml_names_the_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    error = error_of(tmp_path, text)
    assert (error.key, error.line) == ("", line)
    assert str(error).startswith(f"{tmp_path / 'bastion.yaml'}:{line}: {fragment}")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "is empty"),
        (b"# only a comment\n", "is empty"),
        (b"- a\n- b\n", "must be a mapping"),
        (b"just text\n", "must be a mapping"),
        (b"servers: {}\nx: \xff\n", "not UTF-8"),
    ],
)
def test_whole_file_problems(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == ""
    assert fragment in str(info.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found") as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.file == tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_jwt_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "auth: {jwt: {issuer: 'https://idp/', audience: bastion, jwks_url: 'https://idp/jwks'}}")
    assert config.auth.jwt == JwtConfig(
        issuer="https://idp/",
        audience="bastion",
        jwks_url="https://idp/jwks",
        algorithms=("RS256",),
        agent_claim="sub",
        servers_claim=None,
    )
    hmac = load(tmp_path, "auth: {jwt: {issuer: i, audience: a, secret: '${S}'}}", {"S": SECRET})
    assert hmac.auth.jwt is not None
    assert (hmac.auth.jwt.secret, hmac.auth.jwt.algorithms) == (SECRET, ("HS256",))


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        f"""
        servers:
          crm: {{url: 'https://x', headers: {{Authorization: Bearer hunter2}}}}
          db: {{command: x, env: {{PASSWORD: hunter2}}}}
        auth: {{jwt: {{issuer: i, audience: a, secret: {SECRET}}}}}
        """,
    )
    assert "hunter2" not in repr(config)
    assert SECRET not in repr(config)


def test_config_for_wrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = config_for_wrap(["mcp-server-time", "--local-timezone", "UTC"])
    assert config.servers == {"wrapped": StdioServerConfig(command="mcp-server-time", args=("--local-timezone", "UTC"))}
    assert config.data_dir == (tmp_path / "bastion-data").resolve()
    assert config.source == Path.cwd() / "<wrap>"
    with pytest.raises(ConfigError, match="no command"):
        config_for_wrap([])


def test_models_are_frozen_and_strict(tmp_path: Path) -> None:
    config = load(tmp_path, "servers: {time: {command: mcp-server-time}}")
    with pytest.raises(ValidationError):
        config.listen = "0.0.0.0:1"  # type: ignore[misc,unused-ignore]
    with pytest.raises(ValidationError):
        StdioServerConfig(command="x", comand="y")  # type: ignore[call-arg]


MODELS_BY_SECTION: list[tuple[str, type[BaseModel]]] = [
    ("", BastionConfig),
    ("audit", AuditConfig),
    ("audit.retention", RetentionConfig),
    ("servers.<name> (stdio)", StdioServerConfig),
    ("servers.<name> (http)", HttpServerConfig),
    ("servers.<name>.sandbox", SandboxConfig),
    ("servers.<name>.health", HealthConfig),
    ("servers.<name>.restart", RestartConfig),
    ("servers.<name>.tools.<tool>", ToolOverride),
    ("virtual_servers.<name>", VirtualServerConfig),
    ("agents.<name>", AgentConfig),
    ("auth", AuthConfig),
    ("auth.jwt", JwtConfig),
    ("pinning", PinningConfig),
    ("approvals", ApprovalsConfig),
    ("alerts", AlertsConfig),
    ("alerts.webhooks[]", WebhookConfig),
    ("limits", LimitsConfig),
    ("limits.per_tool.<glob>", ToolLimitConfig),
    ("results", ResultsConfig),
    ("results.servers.<name> / results.tools.<glob>", ResultRule),
    ("results.provenance", ProvenanceConfig),
    ("metrics", MetricsConfig),
    ("observability", ObservabilityConfig),
    ("observability.tracing", TracingConfig),
]
YAML_KEYS = [
    (section, field.alias or name) for section, model in MODELS_BY_SECTION for name, field in model.model_fields.items()
]


@pytest.mark.parametrize(("section", "key"), YAML_KEYS, ids=[f"{s}:{k}" for s, k in YAML_KEYS])
def test_every_key_is_documented(section: str, key: str) -> None:
    assert f"`{key}`" in DOCS.read_text(encoding="utf-8"), f"{section}.{key} is not in docs/configuration.md"


@pytest.mark.parametrize(("section", "key"), YAML_KEYS, ids=[f"{s}:{k}" for s, k in YAML_KEYS])
def test_every_key_is_in_the_example_config(section: str, key: str) -> None:
    assert re.search(rf"\b{key}\b", default_config_text()), f"{section}.{key} is not in example_config.yaml"


def test_docs_examples_load(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) >= 2
    for index, block in enumerate(blocks):
        config = load_config(write(tmp_path, block, f"{index}.yaml"), environ={"CRM_TOKEN": "t"})
        assert config.servers


def test_an_agent_may_be_scoped_to_a_virtual_server(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "servers: {time: {command: x}}\nvirtual_servers: {support: {tools: ['time__*']}}\n"
        "agents: {helpdesk: {servers: [support]}}\n",
    )
    assert config.agents["helpdesk"].servers == frozenset({"support"})
    assert config.virtual_servers["support"] == VirtualServerConfig(tools=("time__*",))
