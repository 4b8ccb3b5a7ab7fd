"""Who a visitor is (whose judgements, notes and presets they see) and how much of the server one may use.

- A private server without sign-in: everyone is owner ``""`` and shares everything, as on a laptop.
- A team server (``--auth``): each person is their login name; judgements record who made them.
- A public demo (``--public``): a visitor signed in with Hugging Face is ``hf:NAME``. One who is not is their
  browser, ``browser:ID``: a random id the server signs (HMAC with the secret kept next to its data) and the page
  keeps in the browser's storage, so a reload (or a restart of the server) keeps their data and their place in the
  run limit, and a forged or altered id is refused and replaced. A client that holds no signed id (an API client
  of the Gradio API) is its Gradio session, ``session:HASH``.

Runs are limited per visitor in public mode (``runs_per_minute``, one at a time), keyed on the account, the signed
id or, without one, the client address; each address is also held to ``ADDRESS_SHARE`` times the limit, so minting
ids (clearing the browser's storage) does not buy more runs.
"""

from __future__ import annotations

import hashlib
import html
import hmac
import logging
import secrets
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import gradio as gr

from reranker.serve.limits import LimitExceeded, RunLimiter, client_address

log = logging.getLogger(__name__)
ADDRESS_SHARE = 3  # visitors one address may hold (a household, an office) before its runs are limited as one
MAX_SESSIONS = 100_000  # sessions whose signed id is remembered; the oldest are forgotten beyond it
BROWSER_STORAGE_KEY = "rr-visitor"


def refusal(text: str, title: str = "Busy") -> gr.Error:
    """A visitor's action refused: a toast for them, one line in the log (not a traceback)."""
    log.info("refused: %s", text)
    return gr.Error(text, title=title, print_exception=False)


@dataclass(frozen=True)
class Visitor:
    """One request's visitor, resolved once (``Visitors.resolve``): the owner of the data they write, and on a
    team server whose judgements they may look at."""

    owner: str
    team: bool = False

    def shown(self, person: str = "") -> str:
        """Whose judgements they see: their own, or on a team server the ``person`` they chose."""
        return person if self.team and person else self.owner

    def other(self, person: str = "") -> str | None:
        """The chosen ``person`` when that is someone else (the page then names them), else None."""
        shown = self.shown(person)
        return shown if shown != self.owner else None

    def writer(self, person: str = "") -> str:
        """Whose judgements a change writes: only their own, refused while they look at someone else's."""
        if self.other(person):
            raise gr.Error(html.escape(f"You are looking at {person}'s judgements: choose your own under "
                                       "“Whose judgements” to judge.", quote=False))
        return self.owner


class Visitors:
    """The owner of each request's data, and the per-visitor limit on runs (public mode)."""

    def __init__(self, *, public: bool = False, team: bool = False, runs_per_minute: int | None = None,
                 secret: bytes | None = None, limiter: RunLimiter | None = None):
        self.public = public
        self.team = team
        self.runs_per_minute = runs_per_minute
        self.limiter = limiter or RunLimiter()
        self._secret = secret or secrets.token_bytes(32)
        self._browsers: OrderedDict[str, str] = OrderedDict()  # session hash -> the browser's verified id
        self._lock = threading.Lock()

    # --- the signed browser id --------------------------------------------------------------------------
    def _sign(self, visitor_id: str) -> str:
        return hmac.new(self._secret, f"visitor:{visitor_id}".encode(), hashlib.sha256).hexdigest()[:32]

    def verify(self, token) -> str | None:
        """The id in a signed ``token`` ("ID.SIGNATURE"), or None when it is missing, malformed or forged."""
        if not isinstance(token, str) or token.count(".") != 1:
            return None
        visitor_id, signature = token.split(".")
        if not visitor_id or len(visitor_id) > 64 or not hmac.compare_digest(signature, self._sign(visitor_id)):
            return None
        return visitor_id

    def new_token(self) -> str:
        """A new signed id for a browser that holds none (or a forged one)."""
        visitor_id = secrets.token_urlsafe(16)
        return f"{visitor_id}.{self._sign(visitor_id)}"

    def storage_secret(self) -> str:
        """What Gradio's browser storage encrypts with; sent to the page, so derived from the secret, not it."""
        return hmac.new(self._secret, b"browser-state", hashlib.sha256).hexdigest()[:32]

    def arrive(self, token, request: gr.Request = None):
        """The page's first event: the browser's signed id (a new one when it holds none or a forged one), tied to
        this Gradio session so the session's later events know whose they are."""
        if not self.public:
            return gr.update()
        visitor_id = self.verify(token)
        if visitor_id is None:
            token = self.new_token()
            visitor_id = self.verify(token)
        session = getattr(request, "session_hash", None)
        if session:
            with self._lock:
                self._browsers.pop(session, None)
                self._browsers[session] = visitor_id
                while len(self._browsers) > MAX_SESSIONS:
                    self._browsers.popitem(last=False)
        return token

    # --- identity -----------------------------------------------------------------------------------------
    def resolve(self, request: gr.Request | None, profile: gr.OAuthProfile | None = None) -> Visitor:
        """The visitor of ``request`` (signed in, logged in, or their browser's signed id; see ``owner``)."""
        return Visitor(self.owner(request, profile), team=self.team)

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
            raise refusal("This public demo keeps each visitor's data apart and could not tell who you are: "
                          "reload the page (or open a Gradio client session) and try again.", "Who are you?")
        browser = self._browsers.get(session)
        return f"browser:{browser}" if browser else f"session:{session}"

    def address(self, request: gr.Request | None) -> str:
        """The client address of ``request`` (see ``limits.client_address``)."""
        client = getattr(request, "client", None)
        headers = getattr(request, "headers", None) or {}
        return client_address(headers, getattr(client, "host", None))

    # --- the run limit ------------------------------------------------------------------------------------
    @contextmanager
    def run(self, request: gr.Request | None, profile: gr.OAuthProfile | None = None) -> Iterator[None]:
        """Admit one model run for this request's visitor, or refuse it with "busy, try again in N s" when they
        already have one going or have used up their runs of the last minute (public mode)."""
        if self.runs_per_minute is None:
            yield
            return
        owner = self.owner(request, profile)
        address = f"address:{self.address(request)}"
        visitor = address if owner.startswith("session:") else f"visitor:{owner}"  # a session costs nothing to mint
        limits = [(visitor, self.runs_per_minute)]
        if visitor != address:
            limits.append((address, self.runs_per_minute * ADDRESS_SHARE))
        try:
            with self.limiter.run(limits, exclusive=visitor, what="runs"):
                yield
        except LimitExceeded as exc:
            raise refusal(exc.message) from None
