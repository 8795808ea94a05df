"""Send alerts to an HTTP(S) endpoint as JSON POSTs, without ever slowing detection down.

Detection runs in the main thread; a webhook endpoint may be slow, down, or hang. So
:meth:`WebhookSink.write` only puts the alert on a bounded queue (dropping the *oldest*
waiting alert when full, and counting it) and a background thread does the HTTP work:
one POST per alert, retried with exponential backoff on connection errors, timeouts and
5xx/429 answers; other 4xx answers are not retried (the request itself is wrong).

TLS certificates are verified by default; ``insecure=True`` (``--webhook-insecure``) is the
only way to turn that off. Header values (tokens) are never printed: messages name the URL
without its userinfo and query string.
"""

from __future__ import annotations

import queue
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, TextIO

import orjson

_STOP = object()


def redact_url(url: str) -> str:
    """``url`` without credentials or query string, for messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` → ``("Name", "value")``; raises ValueError with a usable message."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError("webhook header must look like 'Name: value' (got a value without ':' or name)")
    return name.strip(), value.strip()


class WebhookSink:
    """Alerts → JSON POSTs to ``url`` from a background thread (see module docstring).

    Counters (read them for the health report): ``sent``, ``failed`` (gave up after retries),
    ``dropped`` (queue full), ``retries``.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        insecure: bool = False,
        timeout: float = 5.0,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        queue_size: int = 1000,
        stderr: TextIO | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--webhook needs an http:// or https:// URL (got {redact_url(url)!r})")
        self.url = url
        self._shown_url = redact_url(url)
        self._headers = {"Content-Type": "application/json", "User-Agent": "auditeql", **(headers or {})}
        self._timeout = timeout
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._stderr = stderr if stderr is not None else sys.stderr
        context = ssl.create_default_context()
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, queue_size))
        self._closing = threading.Event()
        self.sent = self.failed = self.dropped = self.retries = 0
        self._thread = threading.Thread(target=self._run, name="auditeql-webhook", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ detection side

    def write(self, alert: Mapping[str, Any]) -> None:
        """Queue one alert; never blocks. When the queue is full the oldest alert is dropped."""
        body = orjson.dumps(alert, option=orjson.OPT_NON_STR_KEYS, default=str)
        while True:
            try:
                self._queue.put_nowait(body)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, timeout: float = 3.0) -> None:
        """Stop after sending what is queued, waiting at most ``timeout`` seconds."""
        self._closing.set()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._queue.put(_STOP, timeout=max(0.01, deadline - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive() or self.pending():
            self._say(f"{self.pending()} alert(s) not delivered at exit")

    def stats(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "dropped": self.dropped,
                "retries": self.retries, "queued": self.pending()}

    # ------------------------------------------------------------------ sender thread

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            self._deliver(item)

    def _deliver(self, body: bytes) -> None:
        delay = self._backoff
        for attempt in range(1, self._max_attempts + 1):
            retry, reason = self._post(body)
            if reason is None:
                self.sent += 1
                return
            if not retry or attempt == self._max_attempts:
                self.failed += 1
                self._say(f"webhook {self._shown_url} failed ({reason}) after {attempt} attempt(s); alert not delivered")
                return
            self.retries += 1
            # while closing, do not sit out long backoffs: one short try each
            wait = min(delay, 0.2) if self._closing.is_set() else delay
            time.sleep(wait)
            delay = min(delay * 2, self._max_backoff)

    def _post(self, body: bytes) -> tuple[bool, str | None]:
        """One attempt: ``(retryable, None on success or a reason without secrets)``."""
        request = urllib.request.Request(self.url, data=body, headers=self._headers, method="POST")
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                response.read(65536)
                return False, None
        except urllib.error.HTTPError as exc:
            return exc.code >= 500 or exc.code == 429, f"HTTP {exc.code}"
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                return False, "TLS certificate verification failed; fix the certificate (or, for tests only, --webhook-insecure)"
            return True, type(exc.reason).__name__ if not isinstance(exc.reason, str) else exc.reason
        except (TimeoutError, OSError) as exc:
            return True, type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - a sender thread must not die
            return True, type(exc).__name__

    def _say(self, message: str) -> None:
        try:
            print(f"auditeql: {message}", file=self._stderr, flush=True)
        except (OSError, ValueError):
            pass
