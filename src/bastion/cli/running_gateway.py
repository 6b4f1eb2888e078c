"""How commands reach the gateway that is running: its URL, and admin API requests to it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import click

from bastion.config import BastionConfig


def running_base_url(config: BastionConfig) -> str:
    """The running gateway's URL (it records it in data_dir/gateway.url), else what the config says."""
    try:
        running = (config.data_dir / "gateway.url").read_text(encoding="utf-8").strip()
    except OSError:
        running = ""
    return running or config.base_url


def admin_request(url: str, token: str, *, method: str = "GET", timeout: float = 5) -> dict[str, Any]:
    """The JSON object the admin API answers; a refusal or an unreachable gateway is a ClickException."""
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: Any = json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            detail = json.load(exc).get("error_description", "")
        except (ValueError, AttributeError):
            detail = ""
        raise click.ClickException(f"the gateway at {url} answered {exc.code}: {detail or exc.reason}") from exc
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot reach the gateway at {url} (is it running? bastion up): {exc}") from exc
    return body if isinstance(body, dict) else {}
