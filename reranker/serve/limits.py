"""Bounds a client cannot mint its way around: runs per minute per key (visitor, address), one run at a time per
visitor, and the client's address as a proxy in front of the server (a Hugging Face Space) passes it on.

Used by the REST API (429 with Retry-After) and by the page's model-running events (``ui.visitors``).
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections import OrderedDict, deque
from contextlib import contextmanager
from typing import Iterator, Mapping

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

WINDOW_S = 60.0
SPACE_ENV = "SPACE_ID"  # set by Hugging Face on a Space
MAX_KEYS = 100_000  # keys remembered at once; the least recently used are forgotten beyond it


class LimitExceeded(Exception):
    """A run refused (one still going, or over a per-minute limit): a message, and seconds to wait."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.message, self.retry_after = message, retry_after


class RunLimiter:
    """Runs admitted per key in a sliding minute; each call names its keys with their limits (all must admit)."""

    def __init__(self):
        self._runs: OrderedDict[str, deque[float]] = OrderedDict()
        self._running: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def run(self, limits: list[tuple[str, int]], *, exclusive: str | None = None,
            what: str = "runs") -> Iterator[None]:
        """Admit one run counted against each ``(key, per_minute)`` of ``limits``, or raise ``LimitExceeded``.
        ``exclusive``: a key that may have only one run going at a time."""
        now = time.monotonic()
        with self._lock:
            if exclusive is not None and exclusive in self._running:
                raise LimitExceeded("Busy: your previous run is still going; try again in a few seconds.", 5)
            for key, per_minute in limits:
                recent = self._recent(key, now)
                if len(recent) >= per_minute:
                    wait = max(1, round(recent[0] + WINDOW_S - now))
                    raise LimitExceeded(f"Busy: this server runs at most {per_minute} {what} a minute per "
                                        f"{key.split(':', 1)[0]}; try again in {wait} s.", wait)
            for key, _ in limits:
                self._recent(key, now).append(now)
            if exclusive is not None:
                self._running.add(exclusive)
        try:
            yield
        finally:
            if exclusive is not None:
                with self._lock:
                    self._running.discard(exclusive)

    def _recent(self, key: str, now: float) -> deque[float]:
        recent = self._runs.pop(key, None) or deque()
        while recent and recent[0] <= now - WINDOW_S:
            recent.popleft()
        self._runs[key] = recent  # most recently used last
        while len(self._runs) > MAX_KEYS:
            self._runs.popitem(last=False)
        return recent


def client_address(headers: Mapping[str, str], peer: str | None) -> str:
    """The client's address: the connection's peer, or, when that peer is a proxy we trust (``trusted_proxy``),
    the last public address the proxies appended to ``X-Forwarded-For`` (earlier entries are the client's to
    write, so they are not believed)."""
    peer = peer or "unknown"
    forwarded = headers.get("x-forwarded-for") if trusted_proxy(peer) else None
    if not forwarded:
        return peer
    hops = []
    for entry in forwarded.split(","):
        try:
            hops.append(ipaddress.ip_address(entry.strip()))
        except ValueError:
            continue
    public = [hop for hop in hops if hop.is_global]
    return str(public[-1] if public else hops[-1]) if hops else peer


def trusted_proxy(peer: str) -> bool:
    """Whether ``peer`` is a proxy whose ``X-Forwarded-For`` is believed: this machine (a local reverse proxy), or
    on a Hugging Face Space (``$SPACE_ID``) any private address (the Space's own proxies). A client on a private
    network elsewhere connects directly, and could write any address there."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return address.is_loopback or (address.is_private and bool(os.environ.get(SPACE_ENV)))


class LoginThrottle:
    """ASGI middleware: at most ``max_failures`` failed logins a minute per client address at ``path`` (Gradio's
    login form); further attempts are answered 429 with Retry-After, without checking the password."""

    def __init__(self, app, path: str = "/login", max_failures: int = 5):
        self.app, self.path, self.max_failures = app, path, max_failures
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        address = client_address(Headers(scope=scope), peer[0] if peer else None)
        now = time.monotonic()
        with self._lock:
            failures = self._recent(address, now)
            wait = max(1, round(failures[0] + WINDOW_S - now)) if len(failures) >= self.max_failures else 0
        if wait:
            response = JSONResponse({"detail": f"Too many failed sign-ins from your address; try again in {wait} s."},
                                    status_code=429, headers={"Retry-After": str(wait)})
            await response(scope, receive, send)
            return
        status = []

        async def recording_send(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, recording_send)
        if status and status[0] >= 400:
            with self._lock:
                self._recent(address, now).append(now)

    def _recent(self, address: str, now: float) -> deque[float]:
        recent = self._failures.pop(address, None) or deque()
        while recent and recent[0] <= now - WINDOW_S:
            recent.popleft()
        self._failures[address] = recent
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)
        return recent
