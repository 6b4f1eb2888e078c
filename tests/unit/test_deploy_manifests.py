"""The deployment files (deploy/): they parse, fit together, and the NetworkPolicies say what
docs/deployment.md promises: only the gateway reaches each MCP server, and nothing else leaves."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from bastion.config import BastionConfig, load_config

DEPLOY = Path(__file__).parents[2] / "deploy"
K8S = DEPLOY / "k8s"
GATEWAY_LABELS = {"app.kubernetes.io/name": "bastion", "app.kubernetes.io/component": "gateway"}
DNS_PORT, POSTGRES_PORT, REDIS_PORT = 53, 5432, 6379


def documents() -> list[dict[str, Any]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return found


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents() if doc["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    [doc] = [doc for doc in of_kind(kind) if doc["metadata"]["name"] == name]
    return doc


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    wanted = selector.get("matchLabels") or {}
    assert not selector.get("matchExpressions"), "keep selectors to matchLabels so these tests can read them"
    return all(labels.get(k) == v for k, v in wanted.items())


def policies_for(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    return [p for p in of_kind("NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def mcp_servers() -> list[dict[str, Any]]:
    return [d for d in of_kind("Deployment") if pod_labels(d).get("bastion.dev/role") == "mcp-server"]


def ports_of(rule: Mapping[str, Any]) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports") or []}


def test_every_manifest_parses_and_is_in_the_kustomization() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    for doc in documents():
        if doc["kind"] == "Kustomization":
            continue
        assert doc["apiVersion"]
        assert doc["metadata"]["name"]
        assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == "bastion"
    kinds = {doc["kind"] for doc in documents()}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "NetworkPolicy"} <= kinds


def test_the_gateway_runs_several_replicas_from_the_config_and_secret() -> None:
    gateway = named("Deployment", "bastion-gateway")
    spec = gateway["spec"]
    assert spec["replicas"] >= 2
    assert selects(spec["selector"], pod_labels(gateway))
    assert pod_labels(gateway) == GATEWAY_LABELS
    [container] = spec["template"]["spec"]["containers"]
    assert container["args"] == ["up", "--config", "/etc/bastion/bastion.yaml"]
    assert [e["secretRef"]["name"] for e in container["envFrom"]] == ["bastion-secrets"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "bastion-config"
    service = named("Service", "bastion")
    assert service["spec"]["selector"] == GATEWAY_LABELS
    assert service["spec"]["sessionAffinity"] == "ClientIP"  # legacy sessions live in one replica


def configured(folder: Path) -> tuple[BastionConfig, dict[str, str]]:
    """The ConfigMap's bastion.yaml, loaded as a gateway would, with the Secret as its environment."""
    secret = named("Secret", "bastion-secrets")["stringData"]
    data = yaml.safe_load(named("ConfigMap", "bastion-config")["data"]["bastion.yaml"])
    path = folder / "bastion.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(path, environ=secret), secret


def test_the_config_map_is_a_valid_bastion_yaml_filled_from_the_secret(tmp_path: Path) -> None:
    config, secret = configured(tmp_path)
    text = named("ConfigMap", "bastion-config")["data"]["bastion.yaml"]
    referenced = set(re.findall(r"\$\{([A-Z_]+)\}", text))
    assert referenced <= set(secret), "every ${VAR} in bastion.yaml comes from the Secret"
    assert {"BASTION_DATABASE_URL", "BASTION_AUDIT_URL", "BASTION_REDIS_URL"} <= referenced
    assert "database_url: ${BASTION_DATABASE_URL}" in text
    assert config.database_url == secret["BASTION_DATABASE_URL"]
    assert config.audit.url == secret["BASTION_AUDIT_URL"]
    assert config.audit.url.startswith("postgresql://")
    assert config.limits.storage == secret["BASTION_REDIS_URL"]
    assert config.limits.shared
    assert config.limits.on_storage_failure == "deny"
    assert config.host == "0.0.0.0"
    assert all(value.count("CHANGE-ME") <= 1 for value in secret.values())


def test_every_configured_server_is_an_mcp_server_service_in_the_manifests(tmp_path: Path) -> None:
    config, _ = configured(tmp_path)
    services = {s["metadata"]["name"]: s for s in of_kind("Service")}
    for name, server in config.servers.items():
        url = getattr(server, "url", None)
        assert url is not None, f"{name}: in Kubernetes each MCP server runs in its own pod"
        host, port = re.fullmatch(r"https?://([^/:]+):(\d+)/.*", url).groups()  # type: ignore[union-attr]
        service = services[host.split(".")[0]]
        assert service["metadata"]["labels"]["bastion.dev/role"] == "mcp-server"
        assert int(port) in {p["port"] for p in service["spec"]["ports"]}


def test_egress_is_denied_by_default_for_every_pod() -> None:
    defaults = [p for p in of_kind("NetworkPolicy") if p["spec"]["podSelector"] == {}]
    assert any("Egress" in p["spec"]["policyTypes"] and not p["spec"].get("egress") for p in defaults)
    assert any("Ingress" in p["spec"]["policyTypes"] and not p["spec"].get("ingress") for p in defaults)


def test_the_gateway_reaches_only_dns_postgres_redis_and_the_mcp_servers() -> None:
    rules = [r for p in policies_for(GATEWAY_LABELS) for r in p["spec"].get("egress") or []]
    assert rules
    allowed: set[tuple[str, int]] = set()
    for rule in rules:
        assert rule.get("to"), "an egress rule without `to` would allow every destination"
        assert rule.get("ports"), "an egress rule without `ports` would allow every port"
        for peer in rule["to"]:
            assert "ipBlock" not in peer, "the gateway reaches pods by label, never an address range"
            labels = peer["podSelector"]["matchLabels"]
            if peer.get("namespaceSelector"):
                assert labels == {"k8s-app": "kube-dns"}
                assert ports_of(rule) == {("UDP", DNS_PORT), ("TCP", DNS_PORT)}
            elif labels == {"app.kubernetes.io/name": "postgresql"}:
                assert ports_of(rule) == {("TCP", POSTGRES_PORT)}
            elif labels == {"app.kubernetes.io/name": "redis"}:
                assert ports_of(rule) == {("TCP", REDIS_PORT)}
            else:
                assert labels == {"bastion.dev/role": "mcp-server"}
        allowed |= ports_of(rule)
    mcp_ports = {("TCP", c["containerPort"]) for d in mcp_servers() for c in _ports(d)}
    assert allowed == {("UDP", 53), ("TCP", 53), ("TCP", POSTGRES_PORT), ("TCP", REDIS_PORT)} | mcp_ports


def _ports(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for c in deployment["spec"]["template"]["spec"]["containers"] for p in c.get("ports") or []]


@pytest.mark.parametrize("server", [d["metadata"]["name"] for d in mcp_servers()])
def test_each_mcp_server_is_reached_only_by_the_gateway(server: str) -> None:
    deployment = named("Deployment", server)
    labels = pod_labels(deployment)
    own = [p for p in policies_for(labels) if p["spec"]["podSelector"] != {}]
    assert own, f"{server} has no NetworkPolicy of its own"
    ingress = [r for p in own for r in p["spec"].get("ingress") or []]
    assert ingress
    for rule in ingress:
        assert rule.get("from"), "an ingress rule without `from` would let anyone in"
        for peer in rule["from"]:
            assert set(peer) == {"podSelector"}, "only pods in this namespace, by label"
            assert peer["podSelector"]["matchLabels"] == GATEWAY_LABELS
        assert ports_of(rule) == {("TCP", p["containerPort"]) for p in _ports(deployment)}
    # Its own egress is explicit too (DNS and its backend), under the namespace's default deny.
    assert any("Egress" in p["spec"]["policyTypes"] for p in own)
    for rule in (r for p in own for r in p["spec"].get("egress") or []):
        assert rule.get("to")
        assert rule.get("ports")


@pytest.mark.parametrize(("name", "port"), [("postgresql", POSTGRES_PORT), ("redis", REDIS_PORT)])
def test_postgres_and_redis_are_reached_only_by_the_gateway(name: str, port: int) -> None:
    own = policies_for({"app.kubernetes.io/name": name})
    ingress = [r for p in own if p["spec"]["podSelector"] != {} for r in p["spec"].get("ingress") or []]
    assert ingress
    for rule in ingress:
        assert [peer["podSelector"]["matchLabels"] for peer in rule["from"]] == [GATEWAY_LABELS]
        assert ports_of(rule) == {("TCP", port)}


def test_the_container_image_runs_bastion_unprivileged() -> None:
    text = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    assert re.search(r"^USER 10001$", text, re.MULTILINE)
    assert 'ENTRYPOINT ["bastion"]' in text
    assert "'.[postgres]'" in text
    assert "EXPOSE 8750" in text
    gateway = named("Deployment", "bastion-gateway")
    assert gateway["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_builds_the_manifests() -> None:
    built = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False)
    assert built.returncode == 0, built.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(built.stdout) if doc]
    assert len(kinds) == len([d for d in documents() if d["kind"] != "Kustomization"])
