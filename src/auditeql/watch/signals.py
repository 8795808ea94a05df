"""Signals for a long-running detector: handlers only set flags; the main loop acts on them.

* SIGTERM / SIGINT: stop — flush the reassembler and engines, write what is pending, save the
  checkpoint, exit 0 (systemd's ``stop`` and Ctrl-C are normal ways to end ``watch``);
* SIGHUP: reload the detection rules (a broken rule file keeps the old rules running);
* SIGUSR1: print a health line now.

Doing the work in the main loop, not in the handler, keeps the pipeline's state consistent:
a handler can run between any two bytecodes. The loop never blocks for more than its tick
(0.1 s), so a flag is acted on promptly.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any


class SignalFlags:
    """Install the handlers (main thread only); ``restore()`` puts the previous ones back."""

    def __init__(self) -> None:
        self.stop = False
        self.stop_signal: str | None = None
        self.reload = False
        self.health = False
        self._previous: dict[int, Any] = {}
        for sig, handler in (
            (signal.SIGTERM, self._on_stop),
            (signal.SIGINT, self._on_stop),
            (signal.SIGHUP, self._on_reload),
            (signal.SIGUSR1, self._on_health),
        ):
            self._previous[sig] = signal.signal(sig, handler)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop = True
        self.stop_signal = signal.Signals(signum).name

    def _on_reload(self, signum: int, frame: FrameType | None) -> None:
        self.reload = True

    def _on_health(self, signum: int, frame: FrameType | None) -> None:
        self.health = True

    def take_reload(self) -> bool:
        flag, self.reload = self.reload, False
        return flag

    def take_health(self) -> bool:
        flag, self.health = self.health, False
        return flag

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
