"""What the HTTP front door (`http_app.GatewayApp`) needs of the process that serves it.

A Protocol, so the front door does not import the `Gateway` that builds it: the gateway
satisfies it, and a test may pass anything else that does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from bastion.auth.authenticator import Authenticator
    from bastion.config import BastionConfig
    from bastion.guard.ratelimit import RateLimitCheck
    from bastion.observability.wiring import GatewayObservability
    from bastion.proxy.refusals import RefusalRecorder


class FrontDoorServices(Protocol):
    """The stores, checks and reports the front door serves requests with."""

    @property
    def config(self) -> BastionConfig: ...

    @property
    def observability(self) -> GatewayObservability:
        """`/metrics` and the metrics listener."""

    @property
    def authenticator(self) -> Authenticator:
        """Credentials to principals (opened with the stores)."""

    @property
    def refusals(self) -> RefusalRecorder:
        """Where `auth.failure` and `request.refused` events go, coalesced."""

    @property
    def limits(self) -> RateLimitCheck | None:
        """The rate-limit check, for `limits.requests_per_agent` at the door; None without limits."""

    @property
    def admin_api(self) -> ASGIApp | None: ...

    @property
    def dashboard(self) -> ASGIApp | None: ...

    @property
    def base_url(self) -> str:
        """Where agents reach this gateway (for RFC 9728 metadata)."""

    def authorization_servers(self) -> list[str]:
        """The issuers RFC 9728 metadata names."""

    def may_read_status(self, authorization: str | None) -> bool:
        """Whether `/readyz` details may go to this `Authorization` header."""

    async def readiness(self) -> dict[str, Any]:
        """The `/readyz` report."""
