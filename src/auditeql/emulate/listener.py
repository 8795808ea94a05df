"""The attacker's side of the emulation: a listener that runs inside the test host's namespace.

Started by :class:`auditeql.emulate.netns.TestHost` as ``python -m auditeql.emulate.listener``
inside the server namespace. It plays a reverse-shell operator so that shells do what they do
in real life (run a command, send its output back) and then terminate by themselves:

* UDP shells (port 53001, IPv4 and IPv6): a UDP listener cannot know a client until it sends
  something, so on the *first* datagram from a new peer it answers ``id`` and, a moment later,
  ``exit``. Shells that never send anything (``ncat -e /bin/sh``) just run until the
  technique's timeout.
* byte-wise UDP shells (port 53003): bash reads its input one byte at a time, so from a UDP
  socket it would keep only the first byte of each datagram; here the commands go out one
  byte per datagram (what an operator of a bash UDP shell has to do).
* TCP shells (port 53002): accept, send ``id`` and ``exit``, read what comes back.
* a DNS-like sink (UDP 53) and a metrics sink (UDP 8125) for the benign look-alikes.

Every datagram/connection is reported on stdout as one JSON line (``{"t":…, "proto":…,
"port":…, "peer":…, "data":…}``), the first line being ``{"ready": true}``. The runner uses
these lines as evidence that a technique really reached the test host (and, when ``data``
contains ``uid=``, that a shell really answered).
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import sys
import time
from typing import Any

COMMANDS = (b"id\n", b"exit\n")
EXIT_DELAY = 0.8  # seconds between "id" and "exit": time for the output to come back


def _emit(**event: Any) -> None:
    event.setdefault("t", round(time.time(), 3))
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _udp(family: int, port: int) -> socket.socket:
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    s.setblocking(False)
    return s


def _tcp(family: int, port: int) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    s.listen(16)
    s.setblocking(False)
    return s


def serve(udp_port: int, tcp_port: int, dns_port: int, metrics_port: int, bytes_port: int) -> None:
    sel = selectors.DefaultSelector()
    for fam in (socket.AF_INET, socket.AF_INET6):
        sel.register(_udp(fam, udp_port), selectors.EVENT_READ, ("shell", udp_port))
        sel.register(_udp(fam, bytes_port), selectors.EVENT_READ, ("bytes", bytes_port))
        sel.register(_udp(fam, dns_port), selectors.EVENT_READ, ("sink", dns_port))
        sel.register(_udp(fam, metrics_port), selectors.EVENT_READ, ("sink", metrics_port))
        sel.register(_tcp(fam, tcp_port), selectors.EVENT_READ, ("accept", tcp_port))
    seen: set[tuple[Any, ...]] = set()
    pending: list[tuple[float, socket.socket, Any, bytes]] = []  # (when, sock, peer, payload)
    conns: dict[socket.socket, float] = {}
    _emit(ready=True)
    while True:
        timeout = 0.2
        for key, _mask in sel.select(timeout):
            role, port = key.data
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if role == "accept":
                try:
                    conn, peer = sock.accept()
                except OSError:
                    continue
                conn.setblocking(False)
                _emit(proto="tcp", port=port, peer=str(peer[0]), event="connect")
                try:
                    conn.sendall(b"".join(COMMANDS))
                except OSError:
                    pass
                sel.register(conn, selectors.EVENT_READ, ("conn", port))
                conns[conn] = time.monotonic()
                continue
            if role == "conn":
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if data:
                    _emit(proto="tcp", port=port, data=data[:300].decode("utf-8", "replace"))
                else:
                    sel.unregister(sock)
                    conns.pop(sock, None)
                    sock.close()
                continue
            try:
                data, peer = sock.recvfrom(65536)
            except OSError:
                continue
            _emit(proto="udp", port=port, peer=str(peer[0]), data=data[:300].decode("utf-8", "replace"))
            if role in ("shell", "bytes") and peer not in seen:
                seen.add(peer)
                now = time.monotonic()
                for i, command in enumerate(COMMANDS):
                    when = now + i * EXIT_DELAY
                    if role == "shell":
                        pending.append((when, sock, peer, command))
                    else:
                        pending.extend((when + j * 0.01, sock, peer, command[j:j + 1]) for j in range(len(command)))
        now = time.monotonic()
        due = [p for p in pending if p[0] <= now]
        pending = [p for p in pending if p[0] > now]
        for _when, sock, peer, payload in due:
            try:
                sock.sendto(payload, peer)
            except OSError:
                pass
        for conn, opened in list(conns.items()):
            if now - opened > 5:
                sel.unregister(conn)
                conns.pop(conn)
                conn.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--udp-port", type=int, default=53001)
    ap.add_argument("--tcp-port", type=int, default=53002)
    ap.add_argument("--dns-port", type=int, default=53)
    ap.add_argument("--metrics-port", type=int, default=8125)
    ap.add_argument("--bytes-port", type=int, default=53003)
    args = ap.parse_args(argv)
    try:
        serve(args.udp_port, args.tcp_port, args.dns_port, args.metrics_port, args.bytes_port)
    except KeyboardInterrupt:  # pragma: no cover
        pass


if __name__ == "__main__":
    main()
