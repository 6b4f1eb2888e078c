"""Cloud and infrastructure: aws/gcloud/az/kubectl/helm/terraform command lines, and cloud tools by name."""

from __future__ import annotations

import re
from collections.abc import Iterator

from bastion.guard.policy.catalogue.base import Entry, Finding, Severity, entry
from bastion.guard.policy.catalogue.shell_parse import Command, short_flags
from bastion.guard.policy.catalogue.view import CallView
from bastion.model import Decision

ASK, DENY = Decision.ASK, Decision.DENY
C, H, M = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM

ENTRIES: tuple[Entry, ...] = (
    entry("cloud.k8s_delete", "Delete Kubernetes resources", "kubectl delete, helm uninstall, a delete tool of a "
          "Kubernetes server.", H, DENY),
    entry("cloud.scale_to_zero", "Scale a workload to zero", "Replicas, desired count or size set to 0 (kubectl scale/"
          "patch of a deployment or statefulset, helm --set, ECS/ASG/node pools): the service stops.", H, ASK),
    entry("cloud.k8s_exec", "Run a command in a container", "kubectl exec / debug / cp into a running pod.", M, ASK),
    entry("cloud.terraform_destroy", "Destroy infrastructure", "terraform/tofu destroy, apply -destroy, pulumi "
          "destroy, cdk destroy.", C, DENY),
    entry("cloud.unreviewed_apply", "Apply infrastructure without review", "terraform apply -auto-approve.", H, ASK),
    entry("cloud.open_security_group", "Open a port to the internet", "An ingress rule from 0.0.0.0/0 or ::/0.", H,
          DENY),
    entry("cloud.iam_change", "Change IAM permissions", "Attach/put policies, create users or access keys, role "
          "bindings (any binding to cluster-admin or system:masters), assume-role policy changes.", C, DENY),
    entry("cloud.storage_delete", "Delete storage buckets or objects", "aws s3 rb, s3 rm --recursive, gsutil rm -r, "
          "az storage delete.", C, DENY),
    entry("cloud.public_bucket", "Make storage public", "public-read ACLs, disabling public access blocks, allUsers "
          "bindings.", C, DENY),
    entry("cloud.instance_terminate", "Terminate compute instances", "ec2 terminate-instances, gcloud compute "
          "instances delete, az vm delete.", H, DENY),
    entry("cloud.database_delete", "Delete a managed database", "rds delete-db-*, dynamodb delete-table, gcloud sql "
          "instances delete.", C, DENY),
    entry("cloud.logging_disable", "Disable audit logging", "cloudtrail stop-logging/delete-trail, guardduty "
          "delete-detector, logging sinks deleted.", C, DENY),
    entry("cloud.key_delete", "Delete or disable encryption keys", "kms schedule-key-deletion / disable-key, key "
          "vault deletes.", C, DENY),
    entry("cloud.secret_read", "Read cloud secrets", "secretsmanager get-secret-value, ssm --with-decryption, "
          "kubectl get secret -o yaml.", H, ASK),
    entry("cloud.resource_delete", "Delete a cloud resource", "Any other delete/remove/terminate of a cloud "
          "resource.", H, ASK),
)  # fmt: skip
_BY_ID = {e.id: e for e in ENTRIES}
_OPEN_CIDR = re.compile(r"(^|[\s=,\"'])(0\.0\.0\.0/0|::/0)\b")
_IAM_OP = re.compile(r"^(attach|put|create|update|add|set)-.*(polic|user|role|group|access-key|login-profile)|"
                     r"^update-assume-role-policy$|^add-iam-policy-binding$|^set-iam-policy$")  # fmt: skip
_KUBE_WORDS = frozenset({"kubectl", "kubernetes", "k8s", "kube", "helm", "openshift"})
_CLOUD_WORDS = frozenset({"aws", "gcp", "gcloud", "azure", "az", "ec2", "s3", "bucket", "instance", "instances",
                          "cluster", "vm", "lambda", "rds", "cloud", "terraform", "pulumi", "droplet", "vpc",
                          "namespace", "pod", "pods", "deployment", "volume", "snapshot", "statefulset",
                          "daemonset", "replicaset", "workload", "autoscaler", "nodegroup", "ecs"})  # fmt: skip
_READ = frozenset({"get", "list", "describe", "logs", "show", "read", "view", "explain", "top", "search", "status"})


def _cloud_cli(cmd: Command) -> Iterator[tuple[str, str]]:
    name, args = cmd.name, [a for a in cmd.args]
    line = " ".join(cmd.argv)[:100]
    words = [a for a in args if not a.startswith("-")]
    text = " ".join(args)
    if name in _SIZING_CLIS and set(words) & _SIZING_VERBS and _to_zero(args):
        yield "cloud.scale_to_zero", line
    if name == "aws" and len(words) >= 2:
        service, op = words[0], words[1]
        if _OPEN_CIDR.search(text) and "ingress" in op:
            yield "cloud.open_security_group", line
        elif service == "iam" and _IAM_OP.match(op):
            yield "cloud.iam_change", line
        elif (service == "s3" and op in ("rb",)) or (service == "s3" and op == "rm" and "--recursive" in args) or (
            service == "s3api" and op in ("delete-bucket", "delete-objects")):  # fmt: skip
            yield "cloud.storage_delete", line
        elif (
            "public-read" in text
            or (op == "delete-public-access-block")
            or (op == "put-public-access-block" and "false" in text.lower())
        ):
            yield "cloud.public_bucket", line
        elif service == "ec2" and op == "terminate-instances":
            yield "cloud.instance_terminate", line
        elif (service == "rds" and op.startswith("delete-db")) or (service == "dynamodb" and op == "delete-table"):
            yield "cloud.database_delete", line
        elif service in ("cloudtrail", "guardduty", "config", "logs") and re.match(
            r"stop-|delete-(trail|detector|"
            r"configuration|log-group)",
            op,
        ):
            yield "cloud.logging_disable", line
        elif service == "kms" and op in ("schedule-key-deletion", "disable-key"):
            yield "cloud.key_delete", line
        elif (service == "secretsmanager" and op == "get-secret-value") or "--with-decryption" in args:
            yield "cloud.secret_read", line
        elif re.match(r"(delete|remove|terminate|deregister|destroy)-", op):
            yield "cloud.resource_delete", line
    elif name in ("gcloud", "gsutil", "az"):
        if (
            "add-iam-policy-binding" in words
            or "set-iam-policy" in words
            or words[:3] == ["role", "assignment", "create"]
        ):
            yield ("cloud.public_bucket" if re.search(r"allUsers|allAuthenticatedUsers", text) else
                   "cloud.iam_change"), line  # fmt: skip
        elif name == "gsutil" and words[:1] == ["iam"] and re.search(r"allUsers|allAuthenticatedUsers", text):
            yield "cloud.public_bucket", line
        elif (name == "gsutil" and (words[:1] == ["rb"] or (words[:1] == ["rm"] and "r" in short_flags(args)))) or (
            words[:2] == ["storage", "rm"] and short_flags(args) & {"r"}):  # fmt: skip
            yield "cloud.storage_delete", line
        elif _OPEN_CIDR.search(text) and "firewall-rules" in words:
            yield "cloud.open_security_group", line
        elif "delete" in words:
            yield ("cloud.database_delete" if "sql" in words[:1] else "cloud.instance_terminate" if
                   {"instances", "vm"} & set(words[:2]) else "cloud.resource_delete"), line  # fmt: skip
    elif name in ("kubectl", "oc"):
        words = _without_option_values(args)
        verb = words[0] if words else ""
        if verb == "delete":
            yield "cloud.k8s_delete", line
        elif _to_zero(args) or (verb in ("patch", "apply", "replace") and _ZERO_REPLICAS.search(text)):
            yield "cloud.scale_to_zero", line
        elif (verb == "create" and words[1:2] and words[1] in ("clusterrolebinding", "rolebinding")) or (
            words[:3] == ["adm", "policy", "add-cluster-role-to-user"]
            or words[:3] == ["adm", "policy", "add-cluster-role-to-group"]
            or (_ADMIN_ROLE.search(text) and verb in ("create", "apply", "patch", "set"))):  # fmt: skip
            yield "cloud.iam_change", line
        elif verb in ("exec", "debug", "cp", "attach"):
            yield "cloud.k8s_exec", line
        elif (
            verb == "get"
            and words[1:2]
            and words[1].startswith("secret")
            and re.search(
                r"-o\s*(yaml|json)|"
                r"--output",
                text,
            )
        ):
            yield "cloud.secret_read", line
    elif name == "helm" and words[:1] and words[0] in ("uninstall", "delete", "del"):
        yield "cloud.k8s_delete", line
    elif name in ("terraform", "tofu", "terragrunt", "pulumi", "cdk", "cdktf"):
        if words[:1] == ["destroy"] or "-destroy" in args or (words[:1] == ["apply"] and "--destroy" in args):
            yield "cloud.terraform_destroy", line
        elif words[:1] == ["apply"] and any(a.lstrip("-") in ("auto-approve", "yes") for a in args):
            yield "cloud.unreviewed_apply", line


_SIZE_OPTIONS = frozenset({"--replicas", "--desired-count", "--desired-capacity", "--max-size", "--size", "--num-nodes",
                           "--node-count", "--instance-count", "--max-instances", "--max", "--count",
                           "--max-replicas"})  # fmt: skip
_SIZING_CLIS = frozenset({"aws", "gcloud", "az", "helm", "eksctl", "doctl", "heroku", "fly", "flyctl", "docker",
                          "nomad", "kn", "cf", "oci", "ibmcloud", "openstack", "ecs-cli", "copilot"})  # fmt: skip
_SIZING_VERBS = frozenset({"scale", "resize", "update-service", "update-auto-scaling-group", "set-desired-capacity",
                           "update", "set", "upgrade", "install", "autoscale", "update-nodegroup-config"})  # fmt: skip
_ZERO_REPLICAS = re.compile(r"[\"']?(replicas|replicaCount|desiredCount|desired_count)[\"']?\s*[:=]\s*[\"']?0+\b(?!\.)")
_ADMIN_ROLE = re.compile(r"(--clusterrole|--role)[= ]\s*['\"]?(cluster-admin|admin)\b|system:masters")


def _to_zero(args: list[str]) -> bool:
    """Whether a sizing option (`--replicas 0`, `--desired-count=0`, `--set replicaCount=0`) sets zero."""
    for i, a in enumerate(args):
        opt, eq, value = a.partition("=")
        if opt in _SIZE_OPTIONS:
            value = value if eq else (args[i + 1] if i + 1 < len(args) else "")
            if value.strip().lstrip("0") == "" and value.strip():
                return True
        elif opt in ("--set", "--set-string") and i + 1 < len(args) and _ZERO_REPLICAS.search(args[i + 1]):
            return True
    return False


_VALUE_OPTIONS = frozenset(
    {
        "-n",
        "--namespace",
        "--context",
        "--kubeconfig",
        "--cluster",
        "-l",
        "--selector",
        "-f",
        "--filename",
        "-c",
        "--container",
        "-o",
        "--output",
        "--user",
        "-s",
        "--server",
    }
)


def _without_option_values(args: list[str]) -> list[str]:
    words: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a in _VALUE_OPTIONS:
            skip = True
        elif not a.startswith("-"):
            words.append(a)
    return words


_CLIS = _SIZING_CLIS | {"aws", "gcloud", "gsutil", "az", "kubectl", "oc", "helm", "terraform", "tofu", "terragrunt",
                        "pulumi", "cdk", "cdktf"}  # fmt: skip
"""Every program `_cloud_cli` judges: it finds nothing in another's command line."""


def detect(call: CallView) -> Iterator[Finding]:
    for where, script in call.commands:
        for cmd in script.commands:
            if call.prescreen and cmd.name not in _CLIS:
                continue
            for eid, reason in _cloud_cli(cmd):
                yield Finding(_BY_ID[eid], f"{reason} in {where.path}", where.path)
    yield from _tools(call)


def _admin_bindings(call: CallView) -> Iterator[Finding]:
    """A role binding to cluster-admin (or the system:masters group) in structured arguments or a manifest."""
    for s in call.strings:
        v = s.value
        if "cluster-admin" not in v and "system:masters" not in v:
            continue
        p = s.path.lower()
        if (v.strip() in ("cluster-admin", "system:masters") and re.search(r"role|group|binding|subject", p)) or (
                re.search(r"(?i)kind[\"']?\s*[:=]\s*[\"']?(Cluster)?RoleBinding", v)):  # fmt: skip
            yield Finding(_BY_ID["cloud.iam_change"], f"a role binding to {v.strip()[:40]!r} in {s.path}", s.path)
            return


def _iac_tools(call: CallView) -> Iterator[Finding]:
    """A terraform / tofu / pulumi tool that destroys (`terraform_apply` with `destroy: true`, `action: destroy`)
    or applies without review (`auto_approve: true`)."""
    words = call.tool_words
    values = {s.value.strip().lower() for s in call.strings if len(s.value) < 40}
    if call.flag("destroy") or words & {"destroy"} or values & {"destroy", "-destroy", "--destroy"}:
        yield Finding(_BY_ID["cloud.terraform_destroy"], f"tool {call.tool} destroys infrastructure", "arguments")
    elif words & {"apply", "up", "deploy"} and (call.flag("auto_approve", "autoApprove", "yes", "skip_preview") or
                                                 values & {"-auto-approve", "--auto-approve", "--yes"}):  # fmt: skip
        yield Finding(_BY_ID["cloud.unreviewed_apply"], f"tool {call.tool} applies without review", "arguments")


def _tools(call: CallView) -> Iterator[Finding]:
    yield from _admin_bindings(call)
    words, all_words = call.tool_words, call.words
    if all_words & {"terraform", "tofu", "opentofu", "terragrunt", "pulumi", "cdktf"} and not words & _READ:
        yield from _iac_tools(call)
    kube = bool(all_words & _KUBE_WORDS)
    if not (kube or all_words & _CLOUD_WORDS) or words & _READ:
        return
    sizes = ("replicas", "replica_count", "desired_count", "desiredCount", "desired_capacity", "min_size", "max_size",
             "count", "size", "instances", "node_count")  # fmt: skip
    replicas = call.scalar(*sizes)
    replicas_text = call.first(*sizes)
    zero = (replicas is not None and replicas.value == 0 and replicas.value is not False) or (
        replicas_text is not None and replicas_text.value.strip().lstrip("0") == "" and replicas_text.value.strip()
    )
    if not zero and words & {"patch", "update", "apply", "replace", "edit"}:
        zero_text = next((s for s in call.strings if _ZERO_REPLICAS.search(s.value)), None)
        replicas_text, zero = (zero_text, True) if zero_text is not None else (replicas_text, zero)
    if words & {"scale", "update", "patch", "resize", "set", "apply", "replace", "edit"} and zero:
        where = (replicas or replicas_text).path  # type: ignore[union-attr]
        yield Finding(_BY_ID["cloud.scale_to_zero"], f"{where} = 0", where)
    if words & {"delete", "remove", "terminate", "destroy", "uninstall", "drain"}:
        eid = "cloud.k8s_delete" if kube else "cloud.instance_terminate" if words & {"instance", "instances", "vm",
                                                                                      "terminate"} else (
            "cloud.storage_delete" if words & {"bucket", "object", "objects", "blob", "volume"} else
            "cloud.resource_delete")  # fmt: skip
        target = call.first("name", "resourceName", "namespace", "resourceType")
        yield Finding(_BY_ID[eid], f"tool {call.tool}" + (f" on {target.value}" if target else ""), "arguments")
    if words & {"exec", "execute"} and kube:
        yield Finding(_BY_ID["cloud.k8s_exec"], f"tool {call.tool}", "arguments")
    for s in call.strings:
        if _OPEN_CIDR.search(" " + s.value) and words & {"ingress", "authorize", "firewall", "rule", "security"}:
            yield Finding(_BY_ID["cloud.open_security_group"], f"{s.value} in {s.path}", s.path)
            break
