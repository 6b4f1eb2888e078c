"""Wrappers: programs that run another command (`sudo`, `env`, `timeout`, `chroot`, `strace`, `flock`, ...).

`peel(argv)` strips one wrapper with its own options and operands and returns the command it runs:
an argv (`nice -n 5 rm -rf x` -> `rm -rf x`), or a shell string for the wrappers that hand their
command to `sh -c` (`script -c`, `flock -c`, `watch`, `parallel`, `sg`), returned as
`sh -c STRING` so the parser descends into it like any other `sh -c`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Wrapper:
    """How one wrapper reads its arguments."""

    values: frozenset[str] = frozenset()
    """Options followed by a separate value (`-u USER`)."""
    operands: int = 0
    """Operands before the command (`chroot NEWROOT`, `timeout DURATION`, `flock FILE`)."""
    shell_option: frozenset[str] = frozenset()
    """Options whose value is a shell string the wrapper runs (`script -c`, `flock -c`, `runuser -c`)."""
    joins_rest: bool = False
    """The remaining words are joined and run by a shell (`watch`, `parallel`, `sg`)."""
    split_option: frozenset[str] = frozenset()
    """Options whose value is split into words and run (`env -S`)."""


def _w(values: str = "", operands: int = 0, shell: str = "", joins: bool = False, split: str = "") -> Wrapper:
    return Wrapper(frozenset(values.split()), operands, frozenset(shell.split()), joins, frozenset(split.split()))


WRAPPERS: dict[str, Wrapper] = {
    "sudo": _w("-u -g -C -D -h -p -r -t -T -U --user --group --chdir --host --prompt --role --type --close-from "
               "--other-user --command-timeout"),
    "doas": _w("-u -C"), "pkexec": _w("--user"), "run0": _w("-u --user -D --chdir"),
    "runuser": _w("-u -g -G -s -w --user --group --supp-group --shell --whitelist-environment", shell="-c --command"),
    "sg": _w(operands=1, shell="-c", joins=True),
    "env": _w("-u -C --unset --chdir -a --argv0", split="-S --split-string"),
    "nohup": _w(), "setsid": _w(), "exec": _w("-a"), "command": _w(), "builtin": _w(), "caffeinate": _w("-t -w"),
    "chronic": _w(), "unbuffer": _w(), "time": _w("-o -f --output --format"), "then": _w(), "do": _w(), "else": _w(),
    "nice": _w("-n --adjustment"), "ionice": _w("-c -n -p -P -u --class --classdata"),
    "timeout": _w("-s -k --signal --kill-after", operands=1), "stdbuf": _w("-i -o -e"),
    "flock": _w("-w -E --timeout --wait --conflict-exit-code", operands=1, shell="-c --command"),
    "unshare": _w("-S -G -R -w --setuid --setgid --root --wd --propagation --map-user --map-group --map-users "
                  "--map-groups"),
    "chroot": _w("--userspec --groups", operands=1),
    "nsenter": _w("-t -S -G --target --setuid --setgid"),
    "strace": _w("-o -e -p -s -u -E -a -b -I -O -P -S -X"), "ltrace": _w("-o -e -p -s -u -a -n -A -D -F -l"),
    "script": _w("-t -T -I -O -B -E -m --log-timing --log-in --log-out --log-io --echo", shell="-c --command"),
    "watch": _w("-n -d --interval --differences", joins=True),
    "xargs": _w("-I -n -P -d -a -L -s -E --max-args --max-procs --delimiter --arg-file --replace --max-lines "
                "--max-chars --eof"),
    "parallel": _w("-j -S -N -n -I --jobs --sshlogin --delay --timeout --joblog --results --tmpdir", joins=True),
    "busybox": _w(), "toybox": _w(),
    "systemd-run": _w("-p -u -M -E --property --unit --machine --setenv --uid --gid --nice --working-directory "
                      "--description --slice -H --host"),
    "firejail": _w(), "taskset": _w(operands=1), "chrt": _w(operands=1), "prlimit": _w("-p --pid"),
    "numactl": _w("-C -N -m -p -i --physcpubind --cpunodebind --membind --preferred --interleave"),
    "cpulimit": _w("-l -p -e --limit --pid --exe"), "proxychains": _w("-f"), "proxychains4": _w("-f"),
    "torsocks": _w("-u -p -a -P"), "tsocks": _w(), "faketime": _w(operands=1), "catchsegv": _w(),
    "valgrind": _w(), "doas.exe": _w(), "gosu": _w(operands=1), "su-exec": _w(operands=1), "setpriv": _w(),
    "capsh": _w(shell="-c"), "nocache": _w(), "eatmydata": _w(), "trickle": _w("-u -d -w -t -l -n"),
}  # fmt: skip
"""Every wrapper the parser looks through (the issue's list and the usual relatives)."""


def peel(name: str, args: list[str]) -> list[str] | None:
    """The command `name args...` runs, as an argv (a shell string as `sh -c STRING`); None if none."""
    spec = WRAPPERS[name]
    if name == "command" and args[:1] and args[0] in ("-v", "-V"):
        return None  # `command -v rm` looks a program up; it runs nothing
    i, operands = 0, 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if spec.shell_option and (a in spec.shell_option or _short_ends(a, spec.shell_option)) and i + 1 < len(args):
            return ["sh", "-c", args[i + 1]]
        if a.startswith("--") and "=" in a:
            opt, _, value = a.partition("=")
            if opt in spec.shell_option:
                return ["sh", "-c", value]
            if opt in spec.split_option:
                return value.split() + args[i + 1 :]
            i += 1
        elif a in spec.split_option and i + 1 < len(args):
            return args[i + 1].split() + args[i + 2 :]
        elif a.startswith("-") and len(a) > 1:
            i += 2 if (a in spec.values and i + 1 < len(args)) else 1
        elif "=" in a and name in ("env", "sudo", "doas", "run0"):
            i += 1  # `env FOO=1 cmd`
        elif operands < spec.operands:
            operands += 1
            i += 1
        else:
            break
    rest = args[i:]
    if name == "parallel" and ":::" in rest:
        rest = rest[: rest.index(":::")]
    if not rest:
        return None
    return ["sh", "-c", " ".join(rest)] if spec.joins_rest else rest


def _short_ends(arg: str, options: frozenset[str]) -> bool:
    """`-qc` ends with the short option `-c`."""
    return len(arg) > 2 and arg[0] == "-" and arg[1] != "-" and f"-{arg[-1]}" in options


_CONTAINER_VALUES = _w(
    "-e --env -u --user -w --workdir --env-file --detach-keys -v --volume -p --publish --name --network --net "
    "--entrypoint --mount -l --label --platform --cpus -m --memory --restart --pull --hostname -h --add-host "
    "--device --cap-add --cap-drop --security-opt --ulimit --log-driver --gpus --runtime --shm-size --tmpfs "
    "--user-ns --userns --pid --ipc --uts --cgroupns -c --container -n --namespace --context"
).values  # fmt: skip


def inner_commands(name: str, args: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """Commands another command runs from its own arguments: `find -exec CMD ;`, `docker exec CTR CMD`,
    `docker run IMAGE CMD`, `kubectl exec POD -- CMD`, as (how, argv) pairs."""
    if name == "find":
        return [("find -exec", argv) for argv in _find_exec(args)]
    if name in ("docker", "podman", "nerdctl") and args:
        words = list(args[1:] if args[0] == "container" else args)
        if words and words[0] in ("exec", "run"):
            rest = _after_options(words[1:], _CONTAINER_VALUES, operands=1)
            return [(f"{name} {words[0]}", rest)] if rest else []
    if name in ("kubectl", "oc") and "exec" in args and "--" in args:
        rest = list(args[args.index("--") + 1 :])
        return [(f"{name} exec", rest)] if rest else []
    return []


def _after_options(args: list[str], values: frozenset[str], operands: int) -> list[str]:
    i, seen = 0, 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return args[i + 1 :] if seen >= operands else args[i + 2 :]
        if a.startswith("-") and len(a) > 1:
            i += 2 if a in values else 1
        elif seen < operands:
            seen += 1
            i += 1
        else:
            return args[i:]
    return []


def _find_exec(args: tuple[str, ...]) -> list[list[str]]:
    """The commands of `find ... -exec CMD ... ;` (and `-execdir`, `-ok`, `-okdir`)."""
    found: list[list[str]] = []
    i = 0
    while i < len(args):
        if args[i] in ("-exec", "-execdir", "-ok", "-okdir"):
            j = i + 1
            while j < len(args) and args[j] not in (";", "\\;", "+"):
                j += 1
            if j > i + 1:
                found.append(list(args[i + 1 : j]))
            i = j
        i += 1
    return found
