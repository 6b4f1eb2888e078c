"""The bastion.yaml model and loader. Every error names the file, line, key and fix.

Reference: docs/configuration.md. A test fails when a key here is missing from it.
"""

from __future__ import annotations

import importlib.resources
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bastion.alerts.config import AlertsConfig, WebhookConfig
from bastion.approvals.config import ApprovalsConfig
from bastion.config_aggregate import ToolOverride, VirtualServerConfig, check_exposed_names, check_prefix
from bastion.config_audit import AuditConfig, RetentionConfig
from bastion.config_errors import (
    ConfigError,
    KeyLines,
    Loc,
    check_http_url,
    config_problem,
    from_validation_error,
    interpolate,
    parse_yaml,
    split_listen,
)
from bastion.config_proxies import check_trusted_proxies
from bastion.guard.policy.config import POLICY_MODELS_AT, PolicyConfig
from bastion.guard.ratelimit.config import LimitsConfig, ToolLimitConfig
from bastion.guard.results.config import ProvenanceConfig, ResultRule, ResultsConfig
from bastion.observability.config import LogFormat, MetricsConfig, ObservabilityConfig
from bastion.runtime.config import HealthConfig, RestartConfig, SandboxConfig, sandbox_setting

__all__ = [
    "AgentConfig",
    "AuditConfig",
    "AuthConfig",
    "BastionConfig",
    "ConfigError",
    "HttpServerConfig",
    "JwtConfig",
    "PinningConfig",
    "RetentionConfig",
    "ServerConfig",
    "StdioServerConfig",
    "config_for_wrap",
    "default_config_text",
    "load_config",
]

DEFAULT_LISTEN = "127.0.0.1:8750"
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_TIMEOUT = 60.0
SERVER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
JWT_HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _resolve(path: Path, info: ValidationInfo) -> Path:
    """Relative paths are relative to the config file's folder (the cwd when there is no file)."""
    source = info.context.get("source") if isinstance(info.context, dict) else None
    return ((Path(source).parent if source else Path.cwd()) / path.expanduser()).resolve()


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise config_problem("must be a number, not true/false", "write a number")
    return value


HttpUrlText = Annotated[str, AfterValidator(check_http_url)]
Seconds = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, allow_inf_nan=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StdioServerConfig(_Frozen):
    """An MCP server Bastion launches as a local command and talks to over stdio."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = Field(default_factory=dict, repr=False)
    cwd: Path | None = None
    timeout: Seconds = DEFAULT_TIMEOUT
    sandbox: Annotated[SandboxConfig, BeforeValidator(sandbox_setting)] = Field(default_factory=SandboxConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    restart: RestartConfig = Field(default_factory=RestartConfig)
    untrusted: bool = False
    """Its results are written by strangers (fetch, browser, mail, search): always scanned, values remembered."""
    expose_as: Annotated[str | None, AfterValidator(check_prefix)] = None
    """The prefix of its tools and prompts at `/mcp` (default: the server's name)."""
    tools: Mapping[str, ToolOverride] = Field(default_factory=dict)
    """Per tool: how it shows at `/mcp` and in virtual servers."""

    @property
    def kind(self) -> Literal["stdio"]:
        return "stdio"

    @field_validator("command")
    @classmethod
    def _command_not_blank(cls, command: str) -> str:
        if not command.strip():
            raise config_problem("is empty", "name the program to run, e.g. `command: mcp-server-time`")
        return command

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: Mapping[str, str]) -> Mapping[str, str]:
        for name, value in env.items():
            if not name or "=" in name or "\0" in name or "\0" in value:
                raise config_problem(f"`{name}` is not a valid environment variable", "use names without `=`")
        return env

    @field_validator("cwd")
    @classmethod
    def _resolve_cwd(cls, cwd: Path | None, info: ValidationInfo) -> Path | None:
        return None if cwd is None else _resolve(cwd, info)


class HttpServerConfig(_Frozen):
    """A remote MCP server Bastion reaches over Streamable HTTP (or the legacy HTTP+SSE transport)."""

    url: HttpUrlText
    transport: Literal["streamable-http", "sse"] = "streamable-http"
    headers: Mapping[str, str] = Field(default_factory=dict, repr=False)
    timeout: Seconds = DEFAULT_TIMEOUT
    health: HealthConfig = Field(default_factory=HealthConfig)
    untrusted: bool = False
    expose_as: Annotated[str | None, AfterValidator(check_prefix)] = None
    tools: Mapping[str, ToolOverride] = Field(default_factory=dict)

    @property
    def kind(self) -> Literal["http"]:
        return "http"

    @field_validator("headers")
    @classmethod
    def _header_lines(cls, headers: Mapping[str, str]) -> Mapping[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise config_problem(f"`{name}` is not a valid HTTP header name", "use letters, digits and `-`")
            if any(c in value for c in "\r\n\0"):
                raise config_problem(
                    f"the value of `{name}` contains a line break", "remove line breaks from the value"
                )
        return headers


ServerConfig: TypeAlias = StdioServerConfig | HttpServerConfig


def _server_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return getattr(value, "kind", None)
    if isinstance(value, dict) and ("command" in value) != ("url" in value):
        return "stdio" if "command" in value else "http"
    return None  # reported as a `server_kind` error: see _server_kind_error


_TaggedServer = Annotated[
    Annotated[StdioServerConfig, Tag("stdio")] | Annotated[HttpServerConfig, Tag("http")],
    Discriminator(_server_kind, custom_error_type="server_kind", custom_error_message="needs `command` or `url`"),
]


class AgentConfig(_Frozen):
    """An agent allowed in. `servers` is what it may reach; None means every server.

    `roles` are names policy rules can match on (`match: {role: ...}`).
    """

    servers: frozenset[str] | None = None
    roles: frozenset[str] = frozenset()


class JwtConfig(_Frozen):
    """Accept JWTs from an identity provider. Exactly one key source is set."""

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    jwks_url: HttpUrlText | None = None
    public_key: str | None = None
    public_key_file: Path | None = None
    secret: str | None = Field(default=None, repr=False)
    algorithms: tuple[str, ...] = ("RS256",)
    agent_claim: str = Field(default="sub", min_length=1)
    servers_claim: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_algorithms(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("algorithms") is None:
            return {**data, "algorithms": ["HS256"] if data.get("secret") is not None else ["RS256"]}
        return data

    @field_validator("public_key")
    @classmethod
    def _pem(cls, key: str | None) -> str | None:
        if key is not None and "-----BEGIN" not in key:
            raise config_problem("is not a PEM public key", "paste the whole -----BEGIN PUBLIC KEY----- block")
        return key

    @field_validator("public_key_file")
    @classmethod
    def _key_file(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:
            return None
        path = _resolve(path, info)
        if not path.is_file():
            raise config_problem(f"{path} does not exist", "point it at a PEM public key file")
        return path

    @field_validator("secret")
    @classmethod
    def _secret(cls, secret: str | None) -> str | None:
        if secret is not None and len(secret.encode()) < 32:
            raise config_problem(
                "is shorter than 32 bytes, too weak for HMAC",
                "use a random secret, e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            )
        return secret

    @model_validator(mode="after")
    def _one_key_source(self) -> JwtConfig:
        sources = ("jwks_url", "public_key", "public_key_file", "secret")
        given = [name for name in sources if getattr(self, name) is not None]
        if len(given) != 1:
            problem = "sets " + " and ".join(f"`{n}`" for n in given) if given else "has no key to verify tokens with"
            raise config_problem(problem, "set exactly one of jwks_url, public_key, public_key_file, secret")
        allowed = JWT_HMAC_ALGORITHMS if given == ["secret"] else JWT_ALGORITHMS
        wrong = [a for a in self.algorithms if a not in allowed]
        if wrong or not self.algorithms:
            what = f"`{wrong[0]}` cannot be used with `{given[0]}`" if wrong else "is empty"
            fix = "use some of " + ", ".join(allowed)
            raise config_problem(what, fix, "auth", "jwt", "algorithms")
        return self


class AuthConfig(_Frozen):
    jwt: JwtConfig | None = None


PinAction: TypeAlias = Literal["block", "ask", "log"]


class PinningConfig(_Frozen):
    """Tool pinning (docs/pinning.md): what a changed tool, or one held for review, gets."""

    enabled: bool = True
    on_change: PinAction = "block"
    on_finding: PinAction = "block"
    scan_descriptions: bool = True


class BastionConfig(_Frozen):
    """A whole bastion.yaml. `source` is the file it came from (absolute)."""

    listen: str = DEFAULT_LISTEN
    data_dir: Path = Field(default=Path("bastion-data"), validate_default=True)
    database_url: str | None = Field(default=None, repr=False)
    public_url: str | None = None
    trusted_proxies: Annotated[list[str], BeforeValidator(check_trusted_proxies)] = Field(default_factory=list)
    """Peers whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed; empty: nobody's."""
    max_body_bytes: Annotated[int, BeforeValidator(_not_bool), Field(gt=0)] = DEFAULT_MAX_BODY_BYTES
    audit: AuditConfig = Field(default_factory=AuditConfig)
    servers: dict[str, _TaggedServer] = Field(default_factory=dict)
    virtual_servers: dict[str, VirtualServerConfig] = Field(default_factory=dict)
    """Named tool sets served at `/servers/<name>/mcp` (see `config_aggregate`)."""
    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    pinning: PinningConfig = Field(default_factory=PinningConfig)
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    results: ResultsConfig = Field(default_factory=ResultsConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    log_format: LogFormat | None = None
    """`text` or `json` log lines; None: text (the `--log-format` option overrides it)."""
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    _source: Path = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        source = context.get("source") if isinstance(context, dict) else None
        self._source = Path(source) if source else Path.cwd() / "<none>"

    @property
    def source(self) -> Path:
        return self._source

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]

    @property
    def base_url(self) -> str:
        """Where agents reach Bastion: `public_url`, else built from `listen`."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @field_validator("listen")
    @classmethod
    def _listen(cls, listen: str) -> str:
        split_listen(listen.strip())
        return listen.strip()

    @field_validator("data_dir")
    @classmethod
    def _resolve_data_dir(cls, data_dir: Path, info: ValidationInfo) -> Path:
        return _resolve(data_dir, info)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if scheme not in ("postgresql", "postgres"):
            raise config_problem(
                f"`{scheme or url}` is not a supported shared database" if scheme else "is not a database URL",
                "use postgresql://user@host:5432/dbname, or leave it unset for SQLite files under data_dir",
            )
        return url

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        url = check_http_url(url)
        if urlsplit(url).query or urlsplit(url).fragment:
            raise config_problem("must not have a ?query or #fragment", "give only scheme, host and optional path")
        return url.rstrip("/")

    @field_validator("servers", mode="before")
    @classmethod
    def _server_names(cls, servers: Any) -> Any:
        for name in servers if isinstance(servers, dict) else ():
            if not isinstance(name, str) or not SERVER_NAME.fullmatch(name):
                raise config_problem(
                    "is not a valid server name (it appears in URLs)" if isinstance(name, str) else "must be text",
                    "use 1-63 lowercase letters, digits, `-` or `_`, starting with a letter or digit",
                    "servers",
                    str(name),
                )
        return servers

    @field_validator("virtual_servers", mode="before")
    @classmethod
    def _virtual_server_names(cls, virtual: Any) -> Any:
        for name in virtual if isinstance(virtual, dict) else ():
            if not isinstance(name, str) or not SERVER_NAME.fullmatch(name):
                raise config_problem(
                    "is not a valid server name (it appears in URLs)" if isinstance(name, str) else "must be text",
                    "use 1-63 lowercase letters, digits, `-` or `_`, starting with a letter or digit",
                    "virtual_servers",
                    str(name),
                )
        return virtual

    @model_validator(mode="after")
    def _exposed_names(self) -> BastionConfig:
        check_exposed_names(
            {name: (server.expose_as, server.tools) for name, server in self.servers.items()},
            self.virtual_servers,
        )
        return self

    @field_validator("agents", mode="before")
    @classmethod
    def _agent_names(cls, agents: Any) -> Any:
        if not isinstance(agents, dict):
            return agents
        for name in agents:
            if not isinstance(name, str) or not AGENT_NAME.fullmatch(name):
                raise config_problem(
                    "is not a valid agent name" if isinstance(name, str) else "must be text",
                    "use 1-128 letters, digits, `.`, `@`, `-` or `_`, starting with a letter or digit",
                    "agents",
                    str(name),
                )
        return {name: {} if entry is None else entry for name, entry in agents.items()}

    @field_validator("agents")
    @classmethod
    def _agents_name_servers(cls, agents: dict[str, AgentConfig], info: ValidationInfo) -> dict[str, AgentConfig]:
        servers = info.data.get("servers")
        virtual = info.data.get("virtual_servers")
        if servers is None or virtual is None:  # invalid: that error is reported instead
            return agents
        known = {**servers, **virtual}
        for name, agent in agents.items():
            unknown = sorted((agent.servers or frozenset()) - known.keys())
            if unknown:
                raise config_problem(
                    f"names server `{unknown[0]}`, which is not configured",
                    "use one of: " + (", ".join(sorted(known)) or "(no servers are configured)"),
                    "agents",
                    name,
                    "servers",
                )
        return agents


_MODELS_AT: dict[Loc, type[BaseModel]] = {
    (): BastionConfig,
    ("audit",): AuditConfig,
    ("audit", "retention"): RetentionConfig,
    ("servers", "*", "stdio"): StdioServerConfig,
    ("servers", "*", "http"): HttpServerConfig,
    ("servers", "*", "stdio", "sandbox"): SandboxConfig,
    ("servers", "*", "stdio", "health"): HealthConfig,
    ("servers", "*", "stdio", "restart"): RestartConfig,
    ("servers", "*", "stdio", "tools", "*"): ToolOverride,
    ("servers", "*", "http", "tools", "*"): ToolOverride,
    ("virtual_servers", "*"): VirtualServerConfig,
    ("agents", "*"): AgentConfig,
    ("auth",): AuthConfig,
    ("auth", "jwt"): JwtConfig,
    ("pinning",): PinningConfig,
    **POLICY_MODELS_AT,
    ("approvals",): ApprovalsConfig,
    ("alerts",): AlertsConfig,
    ("alerts", "webhooks", "*"): WebhookConfig,
    ("limits",): LimitsConfig,
    ("limits", "per_tool", "*"): ToolLimitConfig,
    ("results",): ResultsConfig,
    ("results", "servers", "*"): ResultRule,
    ("results", "tools", "*"): ResultRule,
    ("results", "provenance"): ProvenanceConfig,
}


def _yaml_path(loc: Loc) -> Loc:
    """Drop the union tag pydantic puts after a server name: servers.<name>.<tag>.<key>."""
    if len(loc) > 2 and loc[0] == "servers" and loc[2] in ("stdio", "http"):
        return loc[:2] + loc[3:]
    return loc


def _validate(data: Any, source: Path, lines: KeyLines) -> BastionConfig:
    try:
        config = BastionConfig.model_validate(data, context={"source": source})
    except ValidationError as exc:
        raise from_validation_error(exc, file=source, lines=lines, models_at=_MODELS_AT, yaml_path=_yaml_path) from None
    from bastion.guard.policy.lint import compile_policy, sandbox_domains  # loads the catalogue: only when loading

    compile_policy(
        config.policy,
        source=source,
        lines=lines,
        servers=config.servers.keys(),
        sandboxed=sandbox_domains(config.servers),
    )
    return config


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> BastionConfig:
    """Read and check a bastion.yaml. Raises ConfigError naming the file, line, key and fix.

    `${VAR}` references are filled from `environ` (default: `os.environ`) after parsing.
    """
    source = Path(path).expanduser().absolute()
    try:
        text = source.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            source, "", "file not found", "check the path; docs/configuration.md has an example to start from"
        ) from None
    except IsADirectoryError:
        raise ConfigError(source, "", "is a directory", "pass the path of the bastion.yaml file") from None
    except UnicodeDecodeError:
        raise ConfigError(source, "", "is not UTF-8 text", "save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(source, "", f"cannot be read: {exc.strerror}", "check its permissions") from None
    data, lines = parse_yaml(text, source)
    if data is None:
        raise ConfigError(source, "", "is empty", "add at least a `servers:` section (see docs/configuration.md)")
    if not isinstance(data, dict):
        raise ConfigError(
            source, "", "must be a mapping of keys (listen, servers, ...) at the top level", "see docs/configuration.md"
        )
    data = interpolate(data, os.environ if environ is None else environ, source, lines)
    return _validate(data, source, lines)


def config_for_wrap(command: list[str]) -> BastionConfig:
    """The config of `bastion wrap -- CMD ARGS`: no file, one stdio server named `wrapped`."""
    source = Path.cwd() / "<wrap>"
    if not command:
        raise ConfigError(source, "", "no command to wrap", "put the server command after `--`: bastion wrap -- CMD")
    data = {"servers": {"wrapped": {"command": command[0], "args": command[1:]}}}
    return _validate(data, source, KeyLines())


def default_config_text() -> str:
    """The commented example bastion.yaml shipped in the package."""
    return importlib.resources.files("bastion").joinpath("example_config.yaml").read_text(encoding="utf-8")
