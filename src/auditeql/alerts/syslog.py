"""Send alerts to the local syslog daemon (``/dev/log``) as RFC 5424 messages.

One datagram per alert: ``<PRI>1 TIMESTAMP HOST auditeql PID alert [auditeql@32473 …] reason``.
The structured-data element carries the alert's id, rule and severity so that a SIEM can
parse them without parsing the free text; the message is ``kibana.alert.reason`` (or the rule
name). Severity maps Elastic's ``low/medium/high/critical`` to syslog ``notice/warning/err/crit``.

``/dev/log`` is a datagram socket with systemd-journald and rsyslog; a stream socket is tried
when it is not. A missing or unreachable socket is reported once and counted, never raised:
detection goes on.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, TextIO

from auditeql.fields import first

#: RFC 5424 facility codes by name.
FACILITIES: dict[str, int] = {
    "kern": 0, "user": 1, "daemon": 3, "auth": 4, "syslog": 5, "authpriv": 10,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21,
    "local6": 22, "local7": 23,
}
#: Elastic alert severity -> syslog severity.
SEVERITIES: dict[str, int] = {"critical": 2, "high": 3, "medium": 4, "low": 5}
#: Private enterprise number used in the SD-ID (the example PEN of RFC 5424).
_SD_ID = "auditeql@32473"
_MAX_MESSAGE = 8192


def _sd_escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def format_message(alert: Mapping[str, Any], *, facility: int, hostname: str, pid: int,
                   now: datetime | None = None) -> bytes:
    """The RFC 5424 line for one alert (bytes, UTF-8, no trailing newline)."""
    severity_name = str(first(alert, "kibana.alert.severity") or "medium").lower()
    pri = facility * 8 + SEVERITIES.get(severity_name, 4)
    stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    params = {
        "id": first(alert, "kibana.alert.uuid"),
        "rule": first(alert, "kibana.alert.rule.name"),
        "rule_id": first(alert, "kibana.alert.rule.rule_id"),
        "severity": severity_name,
        "host": first(alert, "host.name") or first(alert, "host.id"),
        "pid": first(alert, "process.pid"),
    }
    sd = "[" + _SD_ID + "".join(f' {k}="{_sd_escape(v)}"' for k, v in params.items() if v is not None) + "]"
    text = first(alert, "kibana.alert.reason") or first(alert, "kibana.alert.rule.name") or "auditeql alert"
    line = f"<{pri}>1 {stamp} {hostname or '-'} auditeql {pid} alert {sd} {text}"
    return line.encode("utf-8", "replace")[:_MAX_MESSAGE]


class SyslogSink:
    """Alerts → the local syslog socket (see the module docstring)."""

    def __init__(self, address: str = "/dev/log", *, facility: str = "auth",
                 stderr: TextIO | None = None) -> None:
        if facility not in FACILITIES:
            raise ValueError(f"unknown syslog facility {facility!r}; use one of: {', '.join(FACILITIES)}")
        self.address = address
        self._facility = FACILITIES[facility]
        self._hostname = socket.gethostname()
        self._stderr = stderr if stderr is not None else sys.stderr
        self._sock: socket.socket | None = None
        self._stream = False
        self._warned = False
        self.sent = self.failed = 0

    def _connect(self) -> socket.socket:
        last: OSError | None = None
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            sock = socket.socket(socket.AF_UNIX, kind)
            try:
                sock.connect(self.address)
            except OSError as exc:
                sock.close()
                last = exc
                if exc.errno != errno.EPROTOTYPE:
                    break
                continue
            self._stream = kind == socket.SOCK_STREAM
            return sock
        assert last is not None
        raise last

    def write(self, alert: Mapping[str, Any]) -> None:
        message = format_message(alert, facility=self._facility, hostname=self._hostname, pid=os.getpid())
        for attempt in range(2):  # reconnect once: syslog daemons restart
            try:
                if self._sock is None:
                    self._sock = self._connect()
                if self._stream:
                    self._sock.sendall(message + b"\n")
                else:
                    self._sock.send(message)
                self.sent += 1
                return
            except OSError as exc:
                if self._sock is not None:
                    self._sock.close()
                    self._sock = None
                if attempt == 1:
                    self.failed += 1
                    if not self._warned:
                        self._warned = True
                        print(f"auditeql: cannot write to syslog at {self.address}: {exc.strerror or exc}; "
                              "alerts still go to the other outputs", file=self._stderr, flush=True)

    def stats(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed}

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
