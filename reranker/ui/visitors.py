"""Who a visitor is (whose judgements, notes and presets they see) and how much of the server one may use.

- A private server without sign-in: everyone is owner ``""`` and shares everything, as on a laptop.
- A team server (``--auth``): each person is their login name; judgements record who made them.
- A public demo (``--public``): a visitor signed in with Hugging Face is ``hf:NAME``; one who is not is their
  browser session, ``session:ID`` (a new tab is a new visitor).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Iterator

import gradio as gr

RUN_WINDOW_S = 60.0


class Visitors:
    """The owner of each request's data, and the per-visitor limit on runs (public mode)."""

    def __init__(self, *, public: bool = False, team: bool = False, runs_per_minute: int | None = None):
        self.public = public
        self.team = team
        self.runs_per_minute = runs_per_minute
        self._runs: dict[str, deque[float]] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def owner(self, request: gr.Request | None, profile: gr.OAuthProfile | None = None) -> str:
        """Whose data this request reads and writes (see the module's docstring)."""
        if profile is not None:
            return f"hf:{profile.username}"
        username = getattr(request, "username", None)
        if username:
            return str(username)
        if not self.public:
            return ""
        session = getattr(request, "session_hash", None)
        if not session:
            raise gr.Error("This public demo keeps each visitor's data apart and could not tell who you are: "
                           "reload the page (or open a Gradio client session) and try again.")
        return f"session:{session}"

    @contextmanager
    def run(self, owner: str) -> Iterator[None]:
        """Admit one model run for ``owner``, or refuse it with "busy, try again in N s" when they already have
        one going or have used up their runs of the last minute (public mode)."""
        if self.runs_per_minute is None:
            yield
            return
        now = time.monotonic()
        with self._lock:
            if owner in self._running:
                raise gr.Error("Busy: your previous run is still going; try again in a few seconds.",
                               title="Busy")
            recent = self._runs.setdefault(owner, deque())
            while recent and recent[0] <= now - RUN_WINDOW_S:
                recent.popleft()
            if len(recent) >= self.runs_per_minute:
                wait = max(1, round(recent[0] + RUN_WINDOW_S - now))
                raise gr.Error(f"Busy: this demo runs at most {self.runs_per_minute} rankings a minute per "
                               f"visitor; try again in {wait} s.", title="Busy")
            recent.append(now)
            self._running.add(owner)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(owner)
