"""The health line ``watch`` prints on stderr every ``--health-interval`` seconds and on SIGUSR1.

A live detector is only trustworthy if it says when it is blind: the kernel's ``lost``
counter (records dropped because the backlog was full) and ``backlog``, our own socket
overflows (ENOBUFS), events the reassembler had to time out (incomplete: a record was lost or
came late), plus throughput and how much state the engines hold. Rates are per second since
the previous report. The line is ``key=value`` pairs, easy to grep and to parse.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO


class HealthReporter:
    """Formats snapshots of counters into health lines; computes rates between reports.

    ``kernel_status`` returns an object with ``lost``/``backlog``/``backlog_limit`` (the
    kernel's audit status) or raises when it is not available (not root, not netlink).
    """

    #: counters reported as per-second rates as well as totals
    RATE_KEYS = ("records", "events", "alerts")

    def __init__(
        self,
        *,
        stderr: TextIO | None = None,
        kernel_status: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stderr = stderr if stderr is not None else sys.stderr
        self._kernel_status = kernel_status
        self._clock = clock
        self._last_time = clock()
        self._last: dict[str, int] = {}
        self._kernel_unavailable_said = False
        self._first_lost: int | None = None

    def line(self, snapshot: Mapping[str, Any]) -> str:
        """One health line for ``snapshot`` (counter totals and gauges)."""
        now = self._clock()
        elapsed = max(now - self._last_time, 1e-9)
        parts: list[str] = []
        for key in self.RATE_KEYS:
            total = int(snapshot.get(key, 0))
            rate = (total - self._last.get(key, 0)) / elapsed
            parts.append(f"{key}_per_s={rate:.1f}")
            self._last[key] = total
        self._last_time = now
        parts.extend(self._kernel_parts())
        for key, value in snapshot.items():
            if key in self.RATE_KEYS:
                parts.append(f"{key}={value}")
            elif value is not None:
                parts.append(f"{key}={value}")
        return "auditeql health: " + " ".join(parts)

    def _kernel_parts(self) -> list[str]:
        if self._kernel_status is None:
            return []
        try:
            status = self._kernel_status()
        except OSError as exc:
            if not self._kernel_unavailable_said:
                self._kernel_unavailable_said = True
                return [f"kernel=unavailable({exc.strerror or exc})"]
            return ["kernel=unavailable"]
        if self._first_lost is None:
            self._first_lost = status.lost
        return [
            f"kernel_lost={status.lost}",
            f"kernel_lost_since_start={status.lost - self._first_lost}",
            f"kernel_backlog={status.backlog}",
            f"kernel_backlog_limit={status.backlog_limit}",
        ]

    def report(self, snapshot: Mapping[str, Any]) -> str:
        """Print the health line for ``snapshot`` on stderr (flushed) and return it."""
        text = self.line(snapshot)
        try:
            print(text, file=self._stderr, flush=True)
        except (OSError, ValueError):
            pass
        return text
