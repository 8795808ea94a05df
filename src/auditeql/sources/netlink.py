"""Read the kernel's audit stream directly over netlink (no auditd needed, works beside one).

Two sockets, two jobs:

* :class:`NetlinkSource` joins the **read-only multicast group** ``AUDIT_NLGRP_READLOG``
  (kernel ≥ 3.16). Any number of readers may join it, so it works next to a running auditd
  (which owns the single unicast channel); it needs ``CAP_AUDIT_READ``. Each datagram is one
  audit record: a 16-byte ``nlmsghdr`` whose ``nlmsg_type`` is the record type, then the text
  ``audit(…): key=value …`` (no ``type=NAME msg=`` prefix). We hand out ``(type, payload)``
  pairs for :func:`auditeql.audit.records.parse_netlink`.
* :func:`audit_status` sends one unicast ``AUDIT_GET`` request and parses the kernel's
  ``struct audit_status`` reply, for the health report (``lost`` and ``backlog`` counters).

When the consumer is slower than the kernel, the socket's receive buffer fills and the kernel
drops datagrams; the next ``recv`` then fails with ``ENOBUFS``. That is not fatal: we count
it, say so on stderr and keep reading (the lost records show up as incomplete events that the
reassembler times out, and in the kernel's own counters). A large ``SO_RCVBUF`` (forced past
``net.core.rmem_max`` with ``SO_RCVBUFFORCE`` when we are root) makes it rare.

Only the standard library ``socket`` module is used.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
SO_RCVBUFFORCE = 33

AUDIT_GET = 1000
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
#: struct audit_status, as many u32 fields as the running kernel sends (older ones send fewer).
_STATUS_FIELDS = (
    "mask", "enabled", "failure", "pid", "rate_limit", "backlog_limit", "lost", "backlog",
    "feature_bitmap", "backlog_wait_time", "backlog_wait_time_actual",
)
#: Largest audit record the kernel sends (MAX_AUDIT_MESSAGE_LENGTH 8970) plus headroom.
_RECV_SIZE = 65536
DEFAULT_RCVBUF = 8 * 1024 * 1024


class NetlinkError(OSError):
    """The audit netlink socket could not be opened or used; the message says what to do."""


@dataclass(frozen=True)
class AuditStatus:
    """The kernel's audit status (``auditctl -s``): what the health report needs."""

    enabled: int
    failure: int
    pid: int
    rate_limit: int
    backlog_limit: int
    lost: int
    backlog: int
    backlog_wait_time: int | None = None


def _open_error(exc: OSError, what: str) -> NetlinkError:
    hint = (
        "run as root or grant CAP_AUDIT_READ (systemd: AmbientCapabilities=CAP_AUDIT_READ)"
        if exc.errno in (errno.EPERM, errno.EACCES)
        else "the kernel may lack audit support (CONFIG_AUDIT) or the multicast group (kernel < 3.16)"
    )
    return NetlinkError(exc.errno, f"cannot {what}: {exc.strerror}; {hint}")


class NetlinkSource:
    """The audit multicast stream: ``read()`` returns the records that are ready.

    ``overflows`` counts ENOBUFS events (kernel dropped datagrams because our buffer was full);
    ``records`` counts records received. ``rcvbuf`` is the buffer size the kernel granted.
    """

    def __init__(self, rcvbuf: int = DEFAULT_RCVBUF, *, stderr: TextIO | None = None) -> None:
        self._stderr = stderr if stderr is not None else sys.stderr
        self.overflows = 0
        self.records = 0
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        except OSError as exc:
            raise _open_error(exc, "open a NETLINK_AUDIT socket") from exc
        try:
            self._set_rcvbuf(rcvbuf)
            self._sock.bind((0, 0))
            self._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, AUDIT_NLGRP_READLOG)
        except OSError as exc:
            self._sock.close()
            raise _open_error(exc, "join the audit multicast group (AUDIT_NLGRP_READLOG)") from exc
        self._sock.setblocking(False)
        self.rcvbuf = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)

    def _set_rcvbuf(self, size: int) -> None:
        # SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; fall back quietly.
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        except OSError:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self, timeout: float | None = None, max_records: int = 4096) -> list[tuple[int, bytes]]:
        """Records available now (waiting up to ``timeout`` seconds for the first one).

        Returns ``[]`` on timeout. An ENOBUFS is reported and counted, and reading goes on.
        """
        out: list[tuple[int, bytes]] = []
        if timeout is None or timeout > 0:
            ready, _, _ = select.select([self._sock], [], [], timeout)
            if not ready:
                return out
        recv = self._sock.recv
        while len(out) < max_records:
            try:
                data = recv(_RECV_SIZE)
            except BlockingIOError:
                break
            except InterruptedError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self._overflow()
                    continue
                raise
            rec = split_datagram(data)
            if rec is not None:
                out.append(rec)
        self.records += len(out)
        return out

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        while True:
            yield from self.read(timeout=None)

    def _overflow(self) -> None:
        self.overflows += 1
        print(
            f"auditeql: netlink receive buffer overflowed (ENOBUFS #{self.overflows}, "
            f"SO_RCVBUF={self.rcvbuf}): the kernel dropped audit records; reading continues. "
            "Raise --rcvbuf or narrow the audit rules if this repeats.",
            file=self._stderr,
            flush=True,
        )

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> NetlinkSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def split_datagram(data: bytes) -> tuple[int, bytes] | None:
    """``(record type, payload text)`` of one audit datagram, or ``None`` if it is not one.

    Like go-libaudit we trust the datagram, not ``nlmsg_len``: the kernel sends exactly one
    record per datagram. Trailing NULs and newlines are stripped.
    """
    if len(data) < _NLMSGHDR.size:
        return None
    _length, msg_type, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data)
    if msg_type in (NLMSG_ERROR, NLMSG_DONE):
        return None
    return msg_type, data[_NLMSGHDR.size:].rstrip(b"\x00\n")


def audit_status(timeout: float = 1.0) -> AuditStatus:
    """Ask the kernel for its audit status with one unicast ``AUDIT_GET`` (needs root).

    Raises :class:`NetlinkError` when not permitted or when the kernel does not answer.
    """
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
    except OSError as exc:
        raise _open_error(exc, "open a NETLINK_AUDIT socket") from exc
    with sock:
        sock.settimeout(timeout)
        sock.bind((0, 0))
        seq = int.from_bytes(os.urandom(4), "little") or 1
        request = _NLMSGHDR.pack(_NLMSGHDR.size, AUDIT_GET, NLM_F_REQUEST, seq, 0)
        try:
            sock.sendto(request, (0, 0))
            while True:
                data = sock.recv(_RECV_SIZE)
                length, msg_type, _flags, rseq, _pid = _NLMSGHDR.unpack_from(data)
                if rseq != seq:
                    continue
                if msg_type == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, _NLMSGHDR.size)[0]
                    if code == 0:  # a bare ACK; the status follows
                        continue
                    raise NetlinkError(code, f"AUDIT_GET refused: {os.strerror(code)}; run as root (CAP_AUDIT_CONTROL)")
                if msg_type == AUDIT_GET:
                    return parse_status(data[_NLMSGHDR.size:length])
        except socket.timeout as exc:
            raise NetlinkError(errno.ETIMEDOUT, "the kernel did not answer AUDIT_GET") from exc
        except OSError as exc:
            if isinstance(exc, NetlinkError):
                raise
            raise _open_error(exc, "query the kernel audit status") from exc


def parse_status(payload: bytes) -> AuditStatus:
    """Decode ``struct audit_status`` (as many u32 fields as present; older kernels send fewer)."""
    count = min(len(payload) // 4, len(_STATUS_FIELDS))
    fields = dict(zip(_STATUS_FIELDS, struct.unpack_from(f"={count}I", payload)))
    return AuditStatus(
        enabled=fields.get("enabled", 0),
        failure=fields.get("failure", 0),
        pid=fields.get("pid", 0),
        rate_limit=fields.get("rate_limit", 0),
        backlog_limit=fields.get("backlog_limit", 0),
        lost=fields.get("lost", 0),
        backlog=fields.get("backlog", 0),
        backlog_wait_time=fields.get("backlog_wait_time"),
    )
