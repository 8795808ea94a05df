"""Audit records on a stream: auditd's dispatcher (audisp plugins), or anything piped to stdin.

auditd hands every record to its plugins (``/etc/audit/plugins.d/*.conf``) on the plugin's
stdin, in one of two formats chosen by the plugin's ``format =`` line:

* ``string``: one audit.log line per record (``type=SYSCALL msg=audit(…): …``, possibly with a
  ``node=`` prefix and auditd's ENRICHED ``0x1D`` suffix). The record parser handles both.
* ``binary``: ``struct audit_dispatcher_header {u32 ver, hlen, type, size}`` followed by
  ``size`` bytes: the same ``audit(…): …`` text the kernel sends over netlink.

The builtin ``af_unix`` plugin writes the same formats to a unix socket instead; ``connect``
reads from such a socket. For ``watch --source -`` the stream may also carry ECS NDJSON
(lines starting with ``{``), which the caller passes through as documents.

The format is detected from the first byte: text starts with a letter or ``{``, a binary
header with its version number (0 or 1) as a little-endian u32.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import sys
from typing import BinaryIO

#: One item of a stream: ``(None, line)`` for a text line, ``(type, payload)`` for a binary record.
Item = tuple[int | None, bytes]

_HEADER = struct.Struct("=IIII")  # ver, hlen, type, size
_MAX_FRAME = 1 << 20


class StreamFormatError(ValueError):
    """The stream is neither audit text nor audisp binary frames."""


class StreamReader:
    """Non-blocking reader of audit items from a file descriptor (stdin, a pipe, a socket).

    ``eof`` turns true when the writer closed its end; ``errors`` counts skipped bad frames.
    """

    def __init__(self, fd: int, *, owner: object | None = None) -> None:
        self._fd = fd
        self._owner = owner  # keeps a socket object alive as long as we read its fd
        os.set_blocking(fd, False)
        self._buf = b""
        self._binary: bool | None = None
        self.eof = False
        self.errors = 0

    def fileno(self) -> int:
        return self._fd

    def read(self, timeout: float | None = 0.0, max_bytes: int = 4 << 20) -> list[Item]:
        """Items available now, waiting up to ``timeout`` seconds for data."""
        if self.eof:
            return []
        if timeout is None or timeout > 0:
            ready, _, _ = select.select([self._fd], [], [], timeout)
            if not ready:
                return []
        got = 0
        while got < max_bytes:
            try:
                chunk = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                break
            except InterruptedError:
                break
            if not chunk:
                self.eof = True
                break
            self._buf += chunk
            got += len(chunk)
        items = self._drain()
        if self.eof and self._buf:
            if not self._binary and self._buf.strip():
                items.append((None, self._buf.rstrip(b"\r")))
            elif self._binary:
                self.errors += 1
                _warn(f"truncated audisp frame at end of stream ({len(self._buf)} bytes) skipped")
            self._buf = b""
        return items

    def _drain(self) -> list[Item]:
        if not self._buf:
            return []
        if self._binary is None:
            self._binary = self._buf[0] in (0, 1)
        return self._frames() if self._binary else self._lines()

    def _lines(self) -> list[Item]:
        cut = self._buf.rfind(b"\n")
        if cut < 0:
            return []
        lines = self._buf[:cut].split(b"\n")
        self._buf = self._buf[cut + 1:]
        return [(None, line.rstrip(b"\r")) for line in lines if line.strip()]

    def _frames(self) -> list[Item]:
        out: list[Item] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= _HEADER.size:
            ver, hlen, rtype, size = _HEADER.unpack_from(buf, pos)
            if ver > 1 or hlen < _HEADER.size or hlen > 64 or size > _MAX_FRAME:
                self.errors += 1
                _warn(
                    "the audisp stream is not in a known binary format (header "
                    f"ver={ver} hlen={hlen} size={size}); set 'format = string' in the plugin .conf"
                )
                self.eof = True  # cannot resynchronise a binary stream
                buf, pos = b"", 0
                break
            end = pos + hlen + size
            if end > len(buf):
                break
            payload = buf[pos + hlen:end].rstrip(b"\x00\n")
            if payload.startswith((b"type=", b"node=")):
                out.append((None, payload))  # protocol v2 may carry log-format text
            else:
                out.append((rtype, payload))
            pos = end
        self._buf = buf[pos:]
        return out


def stdin_reader() -> StreamReader:
    """A reader over this process's stdin (auditd's dispatcher or a pipe)."""
    stream: BinaryIO = sys.stdin.buffer
    return StreamReader(stream.fileno())


def connect(path: str) -> StreamReader:
    """A reader over auditd's builtin ``af_unix`` plugin socket at ``path``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise OSError(
            exc.errno,
            f"cannot connect to the audisp socket {path}: {exc.strerror}; enable the af_unix "
            "plugin (/etc/audit/plugins.d/af_unix.conf: active = yes) and restart auditd",
        ) from exc
    return StreamReader(sock.fileno(), owner=sock)


def _warn(message: str) -> None:
    print(f"auditeql: {message}", file=sys.stderr, flush=True)
