"""Network: URLs parsed with urllib and ipaddress, judged against the allowlist and special addresses.

Hosts are compared after IDNA/lower-casing, with userinfo removed (`https://good.com@evil.net` is
`evil.net`); an allowlisted domain covers its subdomains, never a longer name that merely starts
with it. IPv4 written as one decimal, hex or octal number, IPv4-mapped IPv6 and bracketed IPv6
are resolved before judging. A URL reached with a method that changes data (POST, PUT, PATCH,
DELETE, from the tool name or a `method` argument) off the allowlist is an external write.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

from bastion.guard.policy.catalogue.base import Entry, Finding, Severity, entry
from bastion.guard.policy.catalogue.net_api import graphql_deletes, judge_delete
from bastion.guard.policy.catalogue.net_url import machine_url, readings
from bastion.guard.policy.catalogue.view import PROSE_KEYS, CallView, norm_key
from bastion.model import Decision

ASK, DENY = Decision.ASK, Decision.DENY
C, H, M = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM

ENTRIES: tuple[Entry, ...] = (
    entry("net.cloud_metadata", "Reach a cloud metadata service", "169.254.169.254, fd00:ec2::254, "
          "metadata.google.internal, 100.100.100.200 ...: instance credentials.", C, DENY),
    entry("net.domain_not_allowed", "Host off the allowlist", "A URL whose host is not an allowlisted domain (or a "
          "subdomain of one).", M, ASK),
    entry("net.external_write", "Send data off the allowlist", "A POST, PUT, PATCH or DELETE to a host off the "
          "allowlist.", H, DENY),
    entry("net.userinfo_trick", "Userinfo disguising the host", "A URL whose user part looks like a host name "
          "(`https://trusted.com@evil.net/`).", H, DENY),
    entry("net.obfuscated_ip", "IP address written in disguise", "An IPv4 address as a decimal, hex or octal "
          "number, or mapped into IPv6.", H, DENY),
    entry("net.internal_address", "Reach an internal address", "Loopback, private, link-local or unique-local "
          "addresses and .internal/.local names: server-side request forgery.", H, ASK),
    entry("net.dangerous_scheme", "Non-web URL scheme", "file://, gopher://, dict://, ldap://, jar:, ... reach "
          "local files or speak raw protocols.", H, DENY),
    entry("net.webhook", "Post to a webhook or paste site", "Discord/Slack/Teams webhooks, request bins, paste and "
          "file-drop sites, tunnels: common exfiltration sinks.", H, ASK),
    entry("net.data_in_query", "Encoded data in a URL", "A long encoded value in the query string of a URL off the "
          "allowlist: data smuggled out in a GET.", H, DENY),
    entry("net.url_disguised", "URL disguised with control characters", "A URL with a tab, newline, other control "
          "character, space or backslash inside its host part: clients strip or reinterpret them, so the host "
          "reached is not the host written (`https://evil\\t.com`, `https://evil.com\\@good.com`).", H, DENY),
    entry("net.api_delete", "DELETE through a generic HTTP tool", "A DELETE sent by a generic HTTP or fetch tool "
          "(a `method` argument, `curl -X DELETE`): a deletion without the tool name that would say so.", M, ASK),
    entry("net.api_destroy_resource", "Delete a whole resource through an HTTP API", "A DELETE whose path ends at "
          "a top-level resource (`/repos/<owner>/<name>`, `/projects/<id>`, `/orgs/<id>`, `/buckets/<id>`, ...): a "
          "repository, project or account removed through a generic HTTP tool.", C, DENY),
    entry("net.plain_http_credentials", "Credentials over plain HTTP", "A http:// URL carrying a password or "
          "token.", M, ASK),
)  # fmt: skip
_BY_ID = {e.id: e for e in ENTRIES}

METADATA_HOSTS = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "metadata.tencentyun.com",
    }
)
METADATA_IPS = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "169.254.169.123", "192.0.0.192")
)
_SINKS = re.compile(
    r"(^|\.)(discord(app)?\.com$|hooks\.slack\.com$|webhook\.site$|requestbin\.|pipedream\.net$"
    r"|ngrok(-free)?\.(io|app|dev)$|pastebin\.com$|paste\.ee$|hastebin\.|ghostbin\.|transfer\.sh$"
    r"|file\.io$|0x0\.st$|interact\.sh$|burpcollaborator\.net$|oast\.(pro|fun|live|site|me)$"
    r"|beeceptor\.com$|requestcatcher\.com$|trycloudflare\.com$|outlook\.office\.com$)"
)
_SINK_PATHS = re.compile(r"/(api/)?webhooks?/|/hooks/|/webhookb2/")
_SCHEMES_OK = frozenset({"http", "https", "ws", "wss"})
_WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
_METHOD_KEYS = ("method", "http_method", "verb", "httpmethod", "request_method", "x-http-method-override",
                "x-http-method", "x-method-override", "_method")  # fmt: skip
_HTTP_TOOL_WORDS = frozenset({"http", "https", "request", "requests", "fetch", "api", "rest", "curl", "url", "web",
                              "httpx", "axios", "urllib", "webhook"})  # fmt: skip
_ENCODED = re.compile(r"^[A-Za-z0-9+/_=-]{16,}$")
_WILDCARD_DNS = re.compile(
    r"^(?:.*?[.-])?(\d{1,3}[.-]\d{1,3}[.-]\d{1,3}[.-]\d{1,3})\.(?:nip\.io|sslip\.io|xip\.io|nip\.direct)$"
    r"|^(?:.+\.)?(?:localtest\.me|lvh\.me|localhost\.run)$()"
)
"""Names that public wildcard DNS resolves to the IP written inside them (or to loopback)."""
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|\d+)(\.(0x[0-9a-f]+|\d+)){0,3}$", re.I)


def host_of(url: str) -> str | None:
    """The host of `url` (lower case, no userinfo, brackets or port), or None if it is not a URL."""
    url, _ = machine_url(url)
    try:
        parts = urlsplit(url.strip() if "://" in url else "http://" + url.strip())
        host = parts.hostname
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None


def parse_ip(host: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address | None, bool]:
    """The address a host names, and whether it was written in a disguised form (decimal, hex, octal)."""
    numeric = _NUMERIC_HOST.match(host) is not None
    if not numeric and ":" not in host:
        return None, False  # a name: `ip_address` reads only dotted digits (IPv4) or text with a colon (IPv6)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped, True
        return ip, False
    if not numeric:
        return None, False
    try:
        nums = [int(p, 16) if p.lower().startswith("0x") else int(p, 8) if len(p) > 1 and p.startswith("0") else int(p)
                for p in host.split(".")]  # fmt: skip
        # inet_aton forms: a, a.b (b is 24 bits), a.b.c (c is 16 bits), a.b.c.d
        value = nums[-1]
        for i, n in enumerate(nums[:-1]):
            value += n << (8 * (3 - i))
        return ipaddress.IPv4Address(value), True
    except (ValueError, ipaddress.AddressValueError):
        return None, False


def host_allowed(host: str, domains: Sequence[str]) -> bool:
    """Whether `host` is one of `domains` or a subdomain of one (`*.x.com` and `x.com` both cover `a.x.com`)."""
    for d in domains:
        d = d.strip().lower().rstrip(".").removeprefix("*.")
        if d and (host == d or host.endswith("." + d)):
            return True
    return False


def url_off_allowlist(value: str, domains: Sequence[str]) -> bool:
    """Whether `value` is a URL whose host is not on the allowlist. False when no domains are configured or
    `value` is not a URL. Never raises."""
    try:
        if not domains or not isinstance(value, str) or "://" not in value:
            return False
        hosts = [host_of(reading) for reading in readings(machine_url(value)[0])]
        return any(host is not None and not host_allowed(host, domains) for host in hosts)
    except Exception:
        return False


def judge_url(url: str, domains: Sequence[str], write: bool) -> Iterator[tuple[str, str]]:
    """(entry id, reason) pairs for one URL."""
    if len(url) <= _CACHED_LENGTH and type(domains) is tuple:
        return iter(_judged(url, domains, write))  # the same endpoints are called again and again
    return _judge(url, domains, write)


_CACHED_LENGTH = 2048


@lru_cache(maxsize=4096)
def _judged(url: str, domains: tuple[str, ...], write: bool) -> tuple[tuple[str, str], ...]:
    return tuple(_judge(url, domains, write))


def _judge(url: str, domains: Sequence[str], write: bool) -> Iterator[tuple[str, str]]:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        scheme = parts.scheme.lower()
    except ValueError:
        yield "net.obfuscated_ip", f"unparseable URL {url[:80]}"
        return
    if (
        scheme
        and scheme not in _SCHEMES_OK
        and scheme
        in ("file", "gopher", "dict", "ldap", "tftp", "jar", "netdoc", "php", "expect", "phar", "smb", "sftp", "ftp")
    ):
        yield "net.dangerous_scheme", f"{scheme}:// URL {url[:80]}"
    if not host:
        return
    if parts.username is not None and ("." in parts.username or parts.password is None):
        yield "net.userinfo_trick", f"user part {parts.username!r} before the real host {host}"
    ip, disguised = parse_ip(host)
    if disguised and ip is not None:
        yield "net.obfuscated_ip", f"host {host} is {ip}"
    wildcard = _WILDCARD_DNS.match(host)
    if ip is None and wildcard:
        ip, _ = parse_ip(re.sub(r"[-]", ".", wildcard.group(1)) if wildcard.group(1) else "127.0.0.1")
        yield "net.obfuscated_ip", f"{host} resolves to {ip} (wildcard DNS)"
    if host in METADATA_HOSTS or (ip is not None and ip in METADATA_IPS):
        yield "net.cloud_metadata", f"metadata address {host}"
        return
    allowed = bool(domains) and host_allowed(host, domains)
    if ip is not None and (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved) and not allowed:
        yield "net.internal_address", f"internal address {ip}"
    elif (host == "localhost" or host.endswith((".internal", ".local", ".localhost", ".lan", ".corp"))) and not allowed:
        yield "net.internal_address", f"internal name {host}"
    if not allowed and (_SINKS.search(host) or (_SINK_PATHS.search(parts.path) and write)):
        yield "net.webhook", f"exfiltration sink {host}{parts.path[:40]}"
    if domains and not allowed:
        yield ("net.external_write" if write else "net.domain_not_allowed"), f"{host} is not on the allowlist"
        if any(_ENCODED.match(v) for _, v in parse_qsl(parts.query)):
            yield "net.data_in_query", f"encoded data in the query string to {host}"
    if scheme == "http" and (parts.password or re.search(r"(token|key|secret|password)=", parts.query, re.I)):
        yield "net.plain_http_credentials", f"credentials over http to {host}"


def _method(call: CallView) -> str | None:
    """The HTTP method a generic HTTP tool is asked to use (a `method` argument, or its name), upper case."""
    methods = [s.value.strip().upper() for s in call.by_key(*_METHOD_KEYS)]
    if methods:  # an override header wins over the method it rides on: judge the most destructive
        return "DELETE" if "DELETE" in methods else methods[0]
    if "delete" in call.tool_words and call.tool_words & _HTTP_TOOL_WORDS:
        return "DELETE"
    return None


def _curl_method(args: Sequence[str]) -> str | None:
    for i, a in enumerate(args):
        if a in ("-X", "--request") and i + 1 < len(args):
            return args[i + 1].upper()
        if a.startswith(("--request=", "-X")) and len(a) > 2:
            return a.split("=", 1)[-1].removeprefix("-X").upper()
    return None


def _write_method(call: CallView) -> bool:
    method = call.first("method", "http_method", "verb")
    if method is not None:
        return method.value.strip().lower() in _WRITE_METHODS
    return bool(call.tool_words & (_WRITE_METHODS | {"send", "upload", "submit", "request"})) and not (
        call.tool_words & {"get", "fetch", "read", "head"}
    )


def detect(call: CallView) -> Iterator[Finding]:
    domains = call.context.allowed_domains
    write = _write_method(call) if call.urls else False
    http_method = _method(call) if call.urls else None
    raw = {s.path: s.value for s in call.strings} if call.urls else {}
    for s in call.urls:
        url = s.value if "://" in s.value else "https://" + s.value
        if machine_url(raw.get(s.path, s.value))[1]:
            yield Finding(_BY_ID["net.url_disguised"], f"{raw.get(s.path, '')[:80]!r} reaches {url[:80]}", s.path)
        for reading in readings(url):
            for eid, reason in judge_url(reading, domains, write):
                yield Finding(_BY_ID[eid], f"{reason} in {s.path}", s.path)
        if http_method == "DELETE" and url.lower().startswith(("http://", "https://")):
            for eid, reason in judge_delete(url):
                yield Finding(_BY_ID[eid], f"{reason} in {s.path}", s.path)
    api = bool(call.urls) or "graphql" in call.words  # prose elsewhere (a document about GraphQL) is text
    for s in call.strings:
        if "mutation" not in s.value or (norm_key(s.key) in PROSE_KEYS and not api):
            continue
        for eid, reason in graphql_deletes(s.value):
            yield Finding(_BY_ID[eid], f"{reason} in {s.path}", s.path)
    for where, script in call.commands:
        for cmd in script.commands:
            if cmd.name not in ("curl", "wget", "http", "https", "xh", "aria2c", "fetch", "httpie"):
                continue
            method = any(a.upper() in ("POST", "PUT", "PATCH", "DELETE") for a in cmd.args) or any(
                a in ("-d", "--data", "--data-binary", "-F", "--form", "-T", "--upload-file", "--post-data")
                for a in cmd.args
            )
            deleting = _curl_method(cmd.args) == "DELETE"
            for written in cmd.args:
                arg, disguised = machine_url(written)
                if "://" in arg and not arg.startswith("-"):
                    if disguised:
                        yield Finding(_BY_ID["net.url_disguised"], f"{cmd.name}: {written[:80]!r}", where.path)
                    for eid, reason in (r for reading in readings(arg) for r in judge_url(reading, domains, method)):
                        yield Finding(_BY_ID[eid], f"{cmd.name}: {reason} in {where.path}", where.path)
                    for eid, reason in judge_delete(arg) if deleting else ():
                        yield Finding(_BY_ID[eid], f"{cmd.name}: {reason} in {where.path}", where.path)
