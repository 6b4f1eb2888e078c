"""Runs inside the sandbox: `bridge.py PORT SOCKET -- COMMAND ARGS...`.

The sandbox has its own network namespace with only loopback, so the egress proxy (a Unix
socket bound into the sandbox) is not reachable over TCP. This script listens on
127.0.0.1:PORT inside the sandbox, copies each connection to the Unix socket, and runs the
server as its child with the same stdin/stdout/stderr, exiting with the server's status.

Standard library only, and run with `python -I -S`: it must not import anything the
sandboxed server could have placed on its path.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


def _serve(client: socket.socket, path: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(path)
    except OSError:
        client.close()
        upstream.close()
        return
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _accept(listener: socket.socket, path: str) -> None:
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_serve, args=(client, path), daemon=True).start()


def main(argv: list[str]) -> int:
    port, path, separator, *command = argv[1:]
    if separator != "--" or not command:
        print("usage: bridge.py PORT SOCKET -- COMMAND ARGS...", file=sys.stderr)
        return 2
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(port)))
    listener.listen(64)
    threading.Thread(target=_accept, args=(listener, path), daemon=True).start()
    listener.set_inheritable(False)
    child = subprocess.Popen(command, close_fds=True)  # the server gets stdio only, never the listener
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: child.send_signal(s))
    code = child.wait()
    sys.stdout.flush()
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
