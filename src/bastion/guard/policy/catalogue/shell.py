"""Shell: what parsed command lines do (see `shell_parse` for how they are parsed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from bastion.guard.policy.catalogue.base import Entry, Finding, Severity, entry
from bastion.guard.policy.catalogue.machine import machine_path
from bastion.guard.policy.catalogue.shell_parse import (
    INTERPRETERS,
    SHELLS,
    Command,
    Script,
    long_flags,
    parse_shell,
    short_flags,
)
from bastion.guard.policy.catalogue.view import CallView
from bastion.model import Decision

ASK, DENY = Decision.ASK, Decision.DENY
C, H, M = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM

ENTRIES: tuple[Entry, ...] = (
    entry("shell.recursive_delete", "Recursive delete", "rm -r/-R, find -delete or find -exec rm: a whole tree is "
          "removed.", H, DENY),
    entry("shell.delete_system", "Delete the root, home or a system directory", "rm -r of /, /*, ~, $HOME, /etc, "
          "/usr, /var, ... or --no-preserve-root.", C, DENY),
    entry("shell.pipe_to_interpreter", "Pipe into an interpreter", "Text (often downloaded) piped into sh, bash, "
          "python, perl, node, ...: whatever arrives runs.", C, DENY),
    entry("shell.base64_exec", "Decode base64 into a shell", "A base64 (or hex) payload decoded and run: the command "
          "is hidden from the reader.", C, DENY),
    entry("shell.reverse_shell", "Reverse shell", "A shell wired to a network socket: /dev/tcp, nc -e, socat exec, "
          "interpreter sockets.", C, DENY),
    entry("shell.download_execute", "Download and run", "A file fetched with curl/wget then made executable or run.",
          C, DENY),
    entry("shell.obfuscated", "Obfuscated command", "A command name built from variables, substitutions, ${IFS} or "
          "escape tricks: what runs is hidden.", H, DENY),
    entry("shell.sudo", "Privilege escalation", "sudo, su, doas, pkexec: the command runs as another (root) user.", H,
          DENY),
    entry("shell.chmod_world_writable", "World-writable permissions", "chmod 777 / o+w / a+w: anyone may change the "
          "files.", H, DENY),
    entry("shell.setuid", "Set-uid bit", "chmod u+s / 4755: the file runs with its owner's privileges.", H, DENY),
    entry("shell.disk_wipe", "Wipe a disk or filesystem", "dd/shred/wipefs/mkfs or a redirect onto a block device.",
          C, DENY),
    entry("shell.fork_bomb", "Fork bomb", "A function that calls itself twice in the background.", C, DENY),
    entry("shell.crontab_write", "Install a scheduled job", "crontab -, crontab FILE, crontab -e/-r, at: persistence.",
          H, DENY),
    entry("shell.persistence", "Install a service or startup hook", "systemctl enable, writes to systemd units, "
          "rc files, launch agents.", H, DENY),
    entry("shell.ssh_key_write", "Add an SSH key", "Writing to authorized_keys: a remote login for someone else.", C,
          DENY),
    entry("shell.package_install", "Install a package", "pip/npm/gem/cargo/go/apt install of named packages: code "
          "from a registry runs on this host.", M, ASK),
    entry("shell.package_untrusted_source", "Install from an untrusted source", "A package installed from a custom "
          "index, a URL, a VCS link or with TLS checks off.", H, DENY),
    entry("shell.shutdown", "Shut down or reboot", "shutdown, reboot, halt, poweroff, init 0/6.", H, DENY),
    entry("shell.kill_processes", "Kill processes broadly", "kill -9 -1, killall, pkill: many processes die.", M, ASK),
    entry("shell.service_stop", "Stop a system service", "systemctl stop/disable/mask, service X stop.", M, ASK),
    entry("shell.firewall_disable", "Disable the firewall or MAC", "iptables -F, ufw disable, setenforce 0, stopping "
          "firewalld.", H, DENY),
    entry("shell.history_tamper", "Erase shell history or logs", "history -c, unset HISTFILE, truncating /var/log: "
          "covering tracks.", H, DENY),
    entry("shell.user_change", "Create or change OS users", "useradd, usermod, passwd, chpasswd, visudo.", H, DENY),
    entry("shell.exfil_upload", "Upload files to a remote host", "curl -T/-d @file/-F @file, scp/rsync to a remote, "
          "nc with input: data leaves the host.", H, DENY),
    entry("shell.oversized", "Command line too long to analyse", "A command line longer than 16 KB: it is only split "
          "on operators, so it is held rather than trusted (padding is a way to hide a command).", Severity.MEDIUM,
          ASK),
    entry("shell.eval_dynamic", "Eval of dynamic text", "eval or sh -c of a substitution or variable whose value is "
          "not visible.", H, DENY),
)  # fmt: skip
_BY_ID = {e.id: e for e in ENTRIES}

_SYSTEM_DIRS = re.compile(r"^(/|/\*|~/?|~/\*|\$HOME/?|\$\{HOME\}/?|/(etc|usr|var|bin|sbin|lib|lib64|boot|opt|root|home"
                          r"|srv|sys|proc|dev)/?\*?)$")  # fmt: skip
_DEVICE = re.compile(r"^/dev/(sd|hd|vd|xvd|nvme|mmcblk|disk|md|dm-|mapper/|loop)")
_DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "http", "https", "xh", "lwp-request", "nc", "ncat"})
_DECODERS = frozenset({"base64", "base32", "xxd", "openssl", "uudecode", "gunzip", "zcat", "rev"})
_INSTALLERS = {"pip": "install", "pip3": "install", "pipx": "install", "uv": "add", "npm": "install", "pnpm": "add",
               "yarn": "add", "gem": "install", "cargo": "install", "go": "install", "apt": "install",
               "apt-get": "install", "yum": "install", "dnf": "install", "apk": "add", "brew": "install",
               "conda": "install", "composer": "require", "poetry": "add"}  # fmt: skip
_INSTALL_WORDS = frozenset({"install", "add", "i", "require"})
_SOURCING = INTERPRETERS | {"source", "."}
_UNTRUSTED_OPTS = frozenset({"--index-url", "-i", "--extra-index-url", "--trusted-host", "--registry", "--source",
                             "-f", "--find-links", "--allow-unauthenticated", "--no-verify", "--insecure"})  # fmt: skip


@dataclass(frozen=True, slots=True)
class ShellFinding:
    """A dangerous construct in a command line: the entry id and what was seen."""

    entry_id: str
    reason: str


def shell_findings(text: str) -> list[ShellFinding]:
    """The dangerous constructs of the shell command line `text`; empty when none. Never raises."""
    try:
        return list(analyse(parse_shell(text))) if isinstance(text, str) and text.strip() else []
    except Exception:
        return []


def analyse(script: Script) -> Iterator[ShellFinding]:
    """Every dangerous construct of a parsed script (shell family only)."""
    if script.oversized:
        yield ShellFinding("shell.oversized", "command line longer than the parser's limit")
    for note in script.obfuscations:
        yield ShellFinding("shell.obfuscated", note)
    for cmd in script.commands:
        yield from _command(cmd)
    for stages in script.pipelines:
        yield from _pipeline(stages)
    if download_then_run(script):
        yield ShellFinding("shell.download_execute", "a downloaded file is made executable or run")
    if script.fork_bomb:
        yield ShellFinding("shell.fork_bomb", "a function piping into itself in the background")


def detect(call: CallView) -> Iterator[Finding]:
    for where, script in call.commands:
        for f in analyse(script):
            yield Finding(_BY_ID[f.entry_id], f"{f.reason} in {where.path}", where.path)


def _pipeline(stages: list[Command]) -> Iterator[ShellFinding]:
    for i, stage in enumerate(stages[1:], start=1):
        if stage.name not in INTERPRETERS or not _reads_stdin(stage):
            continue
        before = {s.name for s in stages[:i]}
        decoded = any(s.name in _DECODERS and short_flags(s.args) & {"d", "D", "r"} | long_flags(s.args) & {"--decode"}
                      for s in stages[:i])  # fmt: skip
        if decoded or "base64" in before:
            yield ShellFinding("shell.base64_exec", f"decoded text piped into {stage.name}")
        else:
            src = next((n for n in before if n in _DOWNLOADERS), None) or stages[i - 1].name
            yield ShellFinding("shell.pipe_to_interpreter", f"{src} piped into {stage.name}")
        if stages[0].name in ("nc", "ncat", "netcat", "socat", "telnet"):
            yield ShellFinding("shell.reverse_shell", f"{stages[0].name} piped into {stage.name}")


def _reads_stdin(cmd: Command) -> bool:
    operands = [a for a in cmd.args if not a.startswith("-")]
    flags = short_flags(cmd.args)
    if "c" in flags or ("e" in flags and cmd.name not in SHELLS) or "m" in flags:
        return False  # `python -c CODE`, `perl -e CODE`, `python -m mod` read no script from the pipe
    return not operands or operands[0] == "-" or "s" in flags


def _command(cmd: Command) -> Iterator[ShellFinding]:
    if cmd.wrappers and set(cmd.wrappers) & {"sudo", "doas", "pkexec", "runuser"}:
        yield ShellFinding("shell.sudo", f"{'/'.join(cmd.wrappers)} {' '.join(cmd.argv)[:60]}")
    name, args = cmd.name, cmd.args
    yield from _redirects(cmd)
    if not name:
        return
    check = _CHECKS.get(name)
    if check is not None:
        yield from check(cmd)
    if name in ("mkfs", "wipefs") or name.startswith("mkfs."):
        yield ShellFinding("shell.disk_wipe", f"{name} {' '.join(args)[:60]}")
    if name in _INSTALLERS:
        yield from _install(cmd)
    if name in ("useradd", "usermod", "userdel", "passwd", "chpasswd", "visudo", "adduser", "deluser", "groupadd"):
        yield ShellFinding("shell.user_change", f"{name} {' '.join(args)[:60]}")
    if name in ("shutdown", "reboot", "halt", "poweroff") or (
        name in ("init", "telinit") and args[:1] in (("0",), ("6",))
    ):
        yield ShellFinding("shell.shutdown", name)
    if name in ("killall", "pkill", "killall5") or (name == "kill" and {"-1", "1"} & set(args) and "-9" in args):
        yield ShellFinding("shell.kill_processes", f"{name} {' '.join(args)[:40]}")
    if name in ("su", "sudo", "doas", "pkexec"):
        yield ShellFinding("shell.sudo", f"{name} {' '.join(args)[:60]}")
    if name == "eval" and any("$" in a or "`" in a for a in args):
        yield ShellFinding("shell.eval_dynamic", f"eval {' '.join(args)[:60]}")
    if name in _SOURCING and any(a.startswith("<(") for a in args):
        yield ShellFinding("shell.pipe_to_interpreter", f"{name} runs the output of a process substitution")
    if name in SHELLS and "c" in short_flags(args) and any(a.startswith("$") for a in args):
        yield ShellFinding("shell.eval_dynamic", f"{name} -c of a substitution")


def _rm(cmd: Command) -> Iterator[ShellFinding]:
    flags = short_flags(cmd.args)
    if not (flags & {"r", "R"} or long_flags(cmd.args) & {"--recursive"}):
        return
    targets = [a for a in cmd.args if not a.startswith("-")]
    system = [t for t in targets if _SYSTEM_DIRS.match(machine_path(t).rstrip("/") or "/")]
    if system or "--no-preserve-root" in cmd.args:
        yield ShellFinding("shell.delete_system", f"rm -r of {', '.join(system) or '/'}")
    yield ShellFinding("shell.recursive_delete", f"rm {' '.join(cmd.args)[:80]}")


def _find(cmd: Command) -> Iterator[ShellFinding]:
    args = cmd.args
    if "-delete" in args or any(a in ("-exec", "-execdir", "-ok") and i + 1 < len(args) and args[i + 1] in
                                ("rm", "/bin/rm", "shred") for i, a in enumerate(args)):  # fmt: skip
        yield ShellFinding("shell.recursive_delete", f"find {' '.join(args)[:80]}")


def _chmod(cmd: Command) -> Iterator[ShellFinding]:
    modes = [a for a in cmd.args if not a.startswith("-") or re.fullmatch(r"-[rwxst]+", a)]
    for mode in modes[:1]:
        if re.fullmatch(r"0?[0-7]?[0-7][0-7][2367]", mode) or re.search(r"(^|,)[ao]*[ao][+=][rwxX]*w", mode):
            yield ShellFinding("shell.chmod_world_writable", f"chmod {' '.join(cmd.args)[:60]}")
        if re.fullmatch(r"0?[4-7][0-7]{3}", mode) or re.search(r"[ug]*\+[rwx]*s", mode):
            yield ShellFinding("shell.setuid", f"chmod {' '.join(cmd.args)[:60]}")


def _dd(cmd: Command) -> Iterator[ShellFinding]:
    for a in cmd.args:
        if a.startswith("of=") and _DEVICE.match(a[3:]):
            yield ShellFinding("shell.disk_wipe", f"dd onto {a[3:]}")


def _shred(cmd: Command) -> Iterator[ShellFinding]:
    if any(_DEVICE.match(a) for a in cmd.args):
        yield ShellFinding("shell.disk_wipe", f"shred {' '.join(cmd.args)[:60]}")
    elif any(a.startswith("/var/log") or "history" in a for a in cmd.args):
        yield ShellFinding("shell.history_tamper", f"shred {' '.join(cmd.args)[:60]}")


def _crontab(cmd: Command) -> Iterator[ShellFinding]:
    flags = short_flags(cmd.args)
    if not (flags & {"l"}) or flags & {"r", "e"}:
        yield ShellFinding("shell.crontab_write", f"crontab {' '.join(cmd.args)[:60]}".strip())


def _at(cmd: Command) -> Iterator[ShellFinding]:
    if not short_flags(cmd.args) & {"l"}:
        yield ShellFinding("shell.crontab_write", f"{cmd.name} schedules a job")


def _systemctl(cmd: Command) -> Iterator[ShellFinding]:
    verbs = [a for a in cmd.args if not a.startswith("-")]
    verb = verbs[0] if verbs else ""
    units = " ".join(verbs[1:])
    if verb in ("poweroff", "reboot", "halt", "kexec"):
        yield ShellFinding("shell.shutdown", f"systemctl {verb}")
    elif verb in ("stop", "disable", "mask", "kill") and re.search(r"firewalld|ufw|apparmor|auditd|iptables", units):
        yield ShellFinding("shell.firewall_disable", f"systemctl {verb} {units}")
    elif verb in ("stop", "disable", "mask", "kill"):
        yield ShellFinding("shell.service_stop", f"systemctl {verb} {units}")
    elif verb in ("enable", "link", "edit", "daemon-reload") and units:
        yield ShellFinding("shell.persistence", f"systemctl {verb} {units}")


def _service(cmd: Command) -> Iterator[ShellFinding]:
    if len(cmd.args) >= 2 and cmd.args[1] in ("stop", "disable"):
        yield ShellFinding("shell.service_stop", f"service {cmd.args[0]} {cmd.args[1]}")


def _firewall(cmd: Command) -> Iterator[ShellFinding]:
    a = set(cmd.args)
    if (cmd.name in ("iptables", "ip6tables") and a & {"-F", "--flush", "-X"}) or (
        cmd.name == "ufw" and "disable" in a) or (cmd.name == "setenforce" and a & {"0", "Permissive"}):  # fmt: skip
        yield ShellFinding("shell.firewall_disable", f"{cmd.name} {' '.join(cmd.args)[:40]}")


def _history(cmd: Command) -> Iterator[ShellFinding]:
    if cmd.name == "history" and short_flags(cmd.args) & {"c", "w", "d"}:
        yield ShellFinding("shell.history_tamper", "history -c")
    if cmd.name == "unset" and {"HISTFILE", "HISTSIZE"} & set(cmd.args):
        yield ShellFinding("shell.history_tamper", f"unset {' '.join(cmd.args)}")


def _nc(cmd: Command) -> Iterator[ShellFinding]:
    if short_flags(cmd.args) & {"e", "c"} or "exec:" in " ".join(cmd.args).lower() or "--exec" in cmd.args:
        yield ShellFinding("shell.reverse_shell", f"{cmd.name} {' '.join(cmd.args)[:60]}")


_SOCKET = re.compile(r"socket|fsockopen|TCPSocket|IO::Socket|net\.(connect|Socket|createConnection)|TcpClient"
                     r"|/dev/tcp/|Socket\.tcp|require\(\s*['\"](net|tls|dgram)['\"]")  # fmt: skip
_SPAWN_SHELL = re.compile(r"subprocess|pty\.spawn|os\.dup2|exec\(|exec |spawn\(|system\(|popen|/bin/(ba|z|da)?sh"
                          r"|cmd\.exe|powershell|Invoke-Expression|iex")  # fmt: skip


def _interpreter_code(cmd: Command) -> Iterator[ShellFinding]:
    code = " ".join(cmd.args)
    if _SOCKET.search(code) and _SPAWN_SHELL.search(code):
        yield ShellFinding("shell.reverse_shell", f"{cmd.name} opens a socket and spawns a shell")


def _upload(cmd: Command) -> Iterator[ShellFinding]:
    args = cmd.args
    for i, a in enumerate(args):
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if a in ("-T", "--upload-file") or (a in ("-d", "--data", "--data-binary", "--data-raw", "-F", "--form",
                                                   "--post-file", "--body-file") and "@" in nxt) or a.startswith(
            ("--post-file=", "--body-file=")):  # fmt: skip
            yield ShellFinding("shell.exfil_upload", f"{cmd.name} {a} {nxt[:60]}")
            return


def _copy_remote(cmd: Command) -> Iterator[ShellFinding]:
    operands = [a for a in cmd.args if not a.startswith("-")]
    if len(operands) >= 2 and re.match(r"^[\w.\-]+@?[\w.\-]*:", operands[-1]) and not operands[-1].startswith("/"):
        yield ShellFinding("shell.exfil_upload", f"{cmd.name} to {operands[-1][:60]}")


def _install(cmd: Command) -> Iterator[ShellFinding]:
    args = [a for a in cmd.args if a not in ("-y", "--yes", "-q", "--quiet", "--user", "-U", "--upgrade", "-g")]
    if not args or args[0] not in _INSTALL_WORDS:
        return
    rest = args[1:]
    opts = {a.split("=", 1)[0] for a in rest if a.startswith("-")}
    if "-r" in opts or "--requirement" in opts or "-e" in opts:
        return
    names = [a for a in rest if not a.startswith("-")]
    untrusted = opts & _UNTRUSTED_OPTS or any(re.match(r"^(https?:|git\+|file:|svn\+|hg\+)", n) or n.startswith("git@")
                                              for n in names)  # fmt: skip
    if untrusted:
        yield ShellFinding("shell.package_untrusted_source", f"{cmd.name} {' '.join(cmd.args)[:80]}")
    elif names and not all(n in (".", "./") for n in names):
        yield ShellFinding("shell.package_install", f"{cmd.name} {' '.join(cmd.args)[:80]}")


def _redirects(cmd: Command) -> Iterator[ShellFinding]:
    for op, target in cmd.redirects:
        if "/dev/tcp/" in target or "/dev/udp/" in target:
            yield ShellFinding("shell.reverse_shell", f"redirect {op} {target}")
        elif ">" in op and _DEVICE.match(target):
            yield ShellFinding("shell.disk_wipe", f"redirect onto {target}")
        elif ">" in op and target.endswith("authorized_keys"):
            yield ShellFinding("shell.ssh_key_write", f"redirect {op} {target}")
        elif ">" in op and re.search(r"(^|/)\.(bash|zsh)?(rc|_profile|profile|login)$|/etc/(profile|rc\.local|systemd)",
                                     target):  # fmt: skip
            yield ShellFinding("shell.persistence", f"redirect {op} {target}")
        elif ">" in op and (target.startswith("/var/log/") or target.endswith("_history")):
            yield ShellFinding("shell.history_tamper", f"redirect {op} {target}")
    if cmd.name in ("tee", "cp", "mv", "install", "ln") and any(a.endswith("authorized_keys") for a in cmd.args):
        yield ShellFinding("shell.ssh_key_write", f"{cmd.name} to authorized_keys")


_CHECKS = {
    "rm": _rm, "find": _find, "chmod": _chmod, "dd": _dd, "shred": _shred, "crontab": _crontab, "at": _at,
    "batch": _at, "systemctl": _systemctl, "service": _service, "iptables": _firewall, "ip6tables": _firewall,
    "ufw": _firewall, "setenforce": _firewall, "history": _history, "unset": _history, "nc": _nc, "ncat": _nc,
    "netcat": _nc, "socat": _nc, "python": _interpreter_code, "python3": _interpreter_code, "perl": _interpreter_code,
    "ruby": _interpreter_code, "php": _interpreter_code, "node": _interpreter_code, "nodejs": _interpreter_code,
    "lua": _interpreter_code, "pwsh": _interpreter_code, "powershell": _interpreter_code, "awk": _interpreter_code,
    "gawk": _interpreter_code, "curl": _upload, "wget": _upload, "scp": _copy_remote,
    "rsync": _copy_remote, "truncate": _shred,
}  # fmt: skip


def download_then_run(script: Script) -> bool:
    """curl/wget writing a file that a later command makes executable or runs, in the same line."""
    fetched: set[str] = set()
    for c in script.commands:
        if c.name in ("curl", "wget"):
            args = c.args
            fetched |= {
                args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-o", "-O", "--output", "--output-document")
            }
            fetched |= {t for op, t in c.redirects if ">" in op}
            if c.name == "curl" and ("-O" in args or "--remote-name" in args):
                fetched.add("*")  # saved under the URL's file name
    if not fetched:
        return False
    names = {f.rsplit("/", 1)[-1] for f in fetched}
    for c in script.commands:
        if c.name == "chmod" and any("x" in a for a in c.args if a.startswith(("+", "u+", "a+", "7", "5"))):
            return True
        if c.argv and (c.argv[0].startswith("./") or (c.name in names and "/" in c.argv[0])):
            return True
        if c.name in INTERPRETERS and any(a in fetched or a.rsplit("/", 1)[-1] in names for a in c.args):
            return True
    return False
