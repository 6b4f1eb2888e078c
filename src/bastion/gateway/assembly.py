"""What the gateway is assembled from: its audit log, its guard checks, its JWT settings, the
`config.loaded` event. Kept apart from `Gateway` so the CLI and tests can open the same audit log."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from bastion.audit import open_audit_store
from bastion.audit.anchor_check import UNANCHORED
from bastion.audit.events import ConfigLoaded
from bastion.audit.pii import pii_masker
from bastion.audit.redact import PayloadPolicy, Redactor
from bastion.audit.store import AuditStore
from bastion.config import BastionConfig, JwtConfig
from bastion.gateway.catalogue_redaction import audit_redactor
from bastion.guard.pinning import (
    PinEventSink,
    PinningCheck,
    PinStore,
)
from bastion.guard.pipeline import Check
from bastion.guard.policy.check import PolicyCheck
from bastion.guard.policy.lint import CompiledPolicy, policy_of
from bastion.guard.ratelimit import RateLimitCheck
from bastion.guard.results.build import ResultChecks
from bastion.guard.server_access import ServerAccessCheck
from bastion.stores import (
    audit_url,
)

if TYPE_CHECKING:  # imported where used: `bastion wrap` needs neither HTTP serving, JWT nor the dashboard
    from bastion.auth.jwt_auth import JwtSettings

logger = logging.getLogger(__name__)


def open_audit(config: BastionConfig, redactor: Redactor | None = None) -> AuditStore:
    """The audit store the `audit` section configures (not yet opened).

    `redactor` replaces the secret recogniser in `redacted` mode; the default is the built-in
    one chained with the policy catalogue's (`audit_redactor()`), so secrets the catalogue
    recognises never reach the store in clear.
    """
    audit = config.audit
    redactor = redactor if redactor is not None else audit_redactor()
    policy = PayloadPolicy(audit.mode, redactor, results=audit.results, pii=pii_masker(audit.redact_pii))
    url = audit_url(config)
    anchor = audit.anchor(config.data_dir, url)
    if anchor is None:
        logger.warning(UNANCHORED)
    return open_audit_store(
        config.data_dir,
        url=url,
        policy=policy,
        retention=audit.retention.retention(),
        durability=audit.durability,
        anchor=anchor,
    )


def config_loaded_event(config: BastionConfig) -> ConfigLoaded:
    """The `config.loaded` event for `config` (the digest is of the file as it is now)."""
    try:
        digest = hashlib.sha256(config.source.read_bytes()).hexdigest()
    except OSError:
        digest = ""
    return ConfigLoaded(source=str(config.source), digest=digest, servers=tuple(config.servers))


def jwt_settings(config: JwtConfig) -> JwtSettings:
    """The verifier's settings from the `auth.jwt` section (a key file is read here)."""
    from bastion.auth.jwt_auth import JwtSettings

    public_key = config.public_key
    if config.public_key_file is not None:
        public_key = config.public_key_file.read_text(encoding="utf-8")
    return JwtSettings(
        issuer=config.issuer,
        audience=config.audience,
        jwks_url=str(config.jwks_url) if config.jwks_url is not None else None,
        public_key=public_key,
        secret=config.secret,
        algorithms=tuple(config.algorithms),
        agent_claim=config.agent_claim,
        servers_claim=config.servers_claim,
    )


def default_checks(
    config: BastionConfig | None = None,
    pins: PinStore | None = None,
    pin_events: PinEventSink | None = None,
    limits: RateLimitCheck | None = None,
    results: ResultChecks | None = None,
) -> list[Check]:
    """The guard pipeline's checks, in order. Later capabilities insert theirs here.

    The rate-limit check (`limits`, when any limit is configured) comes first, so a flood
    is turned away before anything costlier runs. Tool pinning runs when a pin store is
    given and `pinning.enabled` is on; its events go to `pin_events` (default: the log).
    The result checks (`results`) come before policy, so a rule that allows a call does not
    skip provenance.
    """
    policy = policy_of(config) if config is not None else CompiledPolicy()
    checks: list[Check] = [] if limits is None else [limits]
    checks.append(ServerAccessCheck())
    if pins is not None and config is not None and config.pinning.enabled:
        pinning = config.pinning
        checks.append(
            PinningCheck(
                pins,
                sink=pin_events,
                on_change=pinning.on_change,
                on_finding=pinning.on_finding,
                scan_descriptions=pinning.scan_descriptions,
            )
        )
    if results is not None:
        checks += [results.provenance, results.requested, results.results]
    return [*checks, PolicyCheck(policy)]
