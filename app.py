"""Qwen3-Reranker relevance inspector: one FastAPI server with the Gradio page mounted at "/".

    python app.py [--model 0.6B|4B|8B|PATH] [--backend auto|vllm|transformers] [--host H] [--port P] [--share]
    python app.py --model 0.6B --servers http://gpu1:8000,http://gpu2:8000    (scores on vLLM servers)

The model comes from ``--model``, else ``$RERANKER_MODEL``, else Qwen3-Reranker-0.6B. It is loaded once in
the background when the server starts and shared by every user; runs are queued one at a time. Visitors may
pick only the models of ``--models``; at most ``--max-engines`` engines stay loaded.
On a Hugging Face Space, this file is the ``app_file`` and ``--public`` is on (docs/app.md, "Public demo").
"""

from __future__ import annotations

import os

if os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true"):  # a ZeroGPU Space: `spaces` patches torch,
    import spaces  # noqa: F401  and must be imported before anything initializes CUDA

import argparse
import asyncio
import logging
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import Callable

import gradio as gr
import uvicorn
from fastapi import FastAPI
from starlette.routing import Mount

from reranker.serve.api import install_api
from reranker.serve.serving import (API_KEY_ENV, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_REQUEST_BYTES,
                                    DEFAULT_PUBLIC_MAX_IN_FLIGHT)
from reranker.serve.limits import SPACE_ENV, LoginThrottle, RunLimiter
from reranker.serve.uploads import UploadGuard
from reranker.files.documents import MAX_DOCUMENTS, MAX_UPLOAD_BYTES
from reranker.errors import InputError
from reranker.scoring.backends import set_max_engines, shutdown_all
from reranker.scoring.backends.zerogpu_backend import on_zerogpu
from reranker.scoring.engine import DEFAULT_MAX_LENGTH
from reranker.serve.demo_limits import DemoLimits, demo_limits
from reranker.cli.model_flags import add_model_arguments, backend_and_options
from reranker.serve.model_holder import ModelHolder, ModelSettings
from reranker.scoring.prompt import INSTRUCTION_PRESETS
from reranker.storage import server_secret
from reranker.storage.presets import PresetStore
from reranker.storage.database import SPACE_STORAGE, Database, default_data_dir
from reranker.ui.page import CSS_PATH, build_app
from reranker.ui import warmup
from reranker.ui.visitors import Visitors

log = logging.getLogger("app")
THEME = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")
DEFAULT_RUNS_PER_MINUTE = 20  # per visitor, in public mode
DEFAULT_QUEUE_SIZE = 64
LOGIN_FAILURES_PER_MINUTE = 5  # per client address; further attempts are answered 429
GRACEFUL_SHUTDOWN_S = 5  # on SIGTERM or Ctrl-C, requests in flight get this long, then are cut: the app stops
# within `docker stop`'s 10 s and still releases its engines


def create_server(holder: ModelHolder, *, data_dir=None, max_documents: int = MAX_DOCUMENTS, api_key: str | None = None,
                  max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, public: bool = False,
                  users: list[tuple[str, str]] | None = None, sign_in: bool | None = None,
                  runs_per_minute: int | None = None, queue_size: int = DEFAULT_QUEUE_SIZE,
                  max_in_flight: int | None = None, limits_note: str = "") -> FastAPI:
    """The whole server: a FastAPI app (REST API + Gradio page at "/"), sharing one ModelHolder.

    ``public``: a public demo (each visitor's data apart, runs limited per visitor, the operator's models only);
    ``users``: (name, password) pairs of a team server, through Gradio's login; ``api_key``: guards the REST
    API, and on a private server without ``users`` also the page and the Gradio API (log in with the key as the
    password); ``sign_in``: offer "Sign in with Hugging Face" (default: in public mode on a Space);
    ``max_in_flight``: REST requests admitted at once, more are answered 503 (default: 16 public, else 64);
    ``limits_note``: what a run may hold, shown with the public demo's note.
    Failed logins are limited per client address (``LOGIN_FAILURES_PER_MINUTE``)."""
    folder = Path(data_dir or default_data_dir())
    presets = PresetStore(Database(folder / "reranker.sqlite3"), INSTRUCTION_PRESETS)
    auth = gradio_auth(users, api_key, public)
    runs_per_minute = (runs_per_minute or DEFAULT_RUNS_PER_MINUTE) if public else runs_per_minute
    limiter = RunLimiter()
    visitors = Visitors(public=public, team=bool(auth), runs_per_minute=runs_per_minute, limiter=limiter,
                        secret=server_secret.load_or_create(folder) if public else None)
    if sign_in is None:
        sign_in = public and bool(os.environ.get(SPACE_ENV))
    demo = build_app(holder, presets, max_documents=max_documents, visitors=visitors, sign_in=sign_in,
                     data_note=(limits_note + "  \n" if limits_note else "") + data_note(folder, public=public),
                     queue_size=queue_size)
    server = FastAPI(title="Qwen3 Reranker")
    # the REST API's routes come before Gradio is mounted at "/" (Gradio's catch-all routes must come last)
    install_api(server, holder, api_key=api_key, max_documents=max_documents, max_request_bytes=max_request_bytes,
                max_in_flight=max_in_flight or (DEFAULT_PUBLIC_MAX_IN_FLIGHT if public else DEFAULT_MAX_IN_FLIGHT),
                runs_per_minute=runs_per_minute if public else None, limiter=limiter)
    server.add_middleware(UploadGuard)  # a file input names a file uploaded here, nothing else
    if auth:
        server.add_middleware(LoginThrottle, max_failures=LOGIN_FAILURES_PER_MINUTE)
    app = gr.mount_gradio_app(server, demo, path="/", theme=THEME, css_paths=[CSS_PATH],
                              max_file_size=MAX_UPLOAD_BYTES, footer_links=["api"], auth=auth,
                              auth_message=_auth_message(users, api_key) if auth else None)
    # Gradio checks that a file input's path lies in its upload folder only once the app "has launched", which
    # mounting never records: recorded here, a second guard behind UploadGuard.
    demo.has_launched = True
    return app


def gradio_auth(users: list[tuple[str, str]] | None, api_key: str | None,
                public: bool) -> list[tuple[str, str]] | Callable[[str, str], bool] | None:
    """What Gradio's login checks: the team's users; or, on a private server with an API key and no users,
    the key as the password of any name (the page and the Gradio API are then guarded like the REST API)."""
    if users:
        return list(users)
    if api_key and not public:
        return lambda name, password: bool(name.strip()) and secrets.compare_digest(password.encode(), api_key.encode())
    return None


def _auth_message(users, api_key) -> str:
    if users:
        return "Qwen3 Reranker team server: sign in with the name and password your operator gave you."
    return "This server is protected by its API key: sign in with any name and the API key as the password."


def data_note(folder: Path, public: bool = False) -> str:
    """Where judgements, presets and the score cache live, and whether they survive a restart (a public page
    names no server path)."""
    where = "Judgements, presets and cached scores are stored " + ("on this server" if public else f"in `{folder}`")
    if folder.resolve().is_relative_to(SPACE_STORAGE):
        return where + ": the Space's persistent storage, kept when the Space restarts."
    if os.environ.get(SPACE_ENV):
        return (where + ": this Space has no persistent storage, so they are lost when it restarts. Export your "
                "judgements to keep them (or ask the owner to add persistent storage).")
    return where + ("; they survive restarts." if public else " on the server; they survive restarts.")


def read_users(pairs: list[str] | None, files: list[str] | None) -> list[tuple[str, str]]:
    """(name, password) pairs from ``--auth NAME:PASSWORD`` values and ``--auth-file`` files (one pair a line,
    ``#`` comments), or an ``InputError`` naming the bad entry."""
    entries = [(f"--auth {p.split(':', 1)[0]}:…", p) for p in pairs or []]
    for file in files or []:
        try:
            lines = Path(file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InputError(f"Cannot read the users file {file!r}: {exc.strerror}.") from exc
        entries += [(f"{file} line {n}", line.strip()) for n, line in enumerate(lines, 1)
                    if line.strip() and not line.lstrip().startswith("#")]
    users = []
    for where, entry in entries:
        name, _, password = entry.partition(":")
        if not name.strip() or not password:
            raise InputError(f"{where}: write each user as NAME:PASSWORD (neither empty).")
        users.append((name.strip(), password))
    return users


def build_parser() -> argparse.ArgumentParser:
    """The server's command-line options (docs/app.md's table is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                        help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", help="also publish a temporary public gradio.live link")
    parser.add_argument("--max-documents", type=int, default=None,
                        help=f"documents per run or API request (default: {MAX_DOCUMENTS:,}; in public mode what "
                             "answers in about 10 s on this hardware, see reranker/serve/demo_limits.py)")
    parser.add_argument("--api-key", default=os.environ.get(API_KEY_ENV),
                        help=f"require 'Authorization: Bearer KEY' on the REST API (default: ${API_KEY_ENV}; none)")
    parser.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES,
                        help=f"largest REST API request body (default: {DEFAULT_MAX_REQUEST_BYTES:,})")
    parser.add_argument("--models", default=os.environ.get("RERANKER_MODELS"), metavar="M[,M...]",
                        help="the models visitors may choose (0.6B, 4B, 8B, hub ids, local folders; env "
                             "RERANKER_MODELS; default: only --model)")
    parser.add_argument("--max-engines", type=int, default=2,
                        help="engines kept loaded at once; the least recently used is released (default: 2)")
    parser.add_argument("--public", action=argparse.BooleanOptionalAction, default=bool(os.environ.get(SPACE_ENV)),
                        help="public demo: each visitor's judgements, notes and presets are their own, runs are "
                             "limited per visitor, only the operator changes models (default: on when $SPACE_ID "
                             "is set, i.e. on a Hugging Face Space)")
    parser.add_argument("--runs-per-minute", type=int, default=None,
                        help=f"model runs per visitor and minute (default: {DEFAULT_RUNS_PER_MINUTE} in public "
                             "mode, no limit otherwise)")
    parser.add_argument("--max-in-flight", type=int, default=None,
                        help=f"REST requests answered at once; more are refused with 503 (default: "
                             f"{DEFAULT_PUBLIC_MAX_IN_FLIGHT} in public mode, else {DEFAULT_MAX_IN_FLIGHT})")
    parser.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE,
                        help=f"runs that may wait in the page's queue (default: {DEFAULT_QUEUE_SIZE})")
    parser.add_argument("--auth", action="append", metavar="NAME:PASSWORD",
                        help="team server: require this login on the page and the Gradio API (repeatable)")
    parser.add_argument("--auth-file", action="append", metavar="FILE",
                        help="team server: users from FILE, one NAME:PASSWORD a line")
    parser.set_defaults(max_length=None)  # resolved by resolve_limits: the demo's limit in public mode
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    args.limits_note = resolve_limits(args)
    return args


def resolve_limits(args: argparse.Namespace) -> str:
    """Fill in ``--max-documents`` and ``--max-length`` the operator left out: in public mode what answers in about
    10 s on this hardware (:func:`demo_limits`), else the defaults. Returns the page's note on the demo's limits
    ("" outside public mode)."""
    if not args.public:
        args.max_documents = args.max_documents or MAX_DOCUMENTS
        args.max_length = args.max_length or DEFAULT_MAX_LENGTH
        return ""
    limits = demo_limits(args.model, zerogpu=on_zerogpu())
    args.max_documents = args.max_documents or limits.documents
    args.max_length = args.max_length or limits.max_length
    hold = DemoLimits(args.max_documents, args.max_length, limits.hardware)
    return hold.note() if hold == limits else (f"On this server a run may hold up to **{hold.documents:,} "
                                               f"documents**, each read up to **{hold.max_length:,} tokens**.")


class Server(uvicorn.Server):
    """uvicorn's server for ``app`` (``create_server``'s), which, asked to stop, first ends the heartbeat stream
    that every open page keeps (as Gradio's own launch does): a graceful shutdown would otherwise wait for them."""

    def __init__(self, app: FastAPI, host: str, port: int):
        super().__init__(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S))
        self.gradio_app = next(r.app for r in app.routes if isinstance(r, Mount) and r.path == "")

    def handle_exit(self, sig, frame) -> None:
        asyncio.get_running_loop().call_soon_threadsafe(self.gradio_app.stop_event.set)
        super().handle_exit(sig, frame)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        backend, engine_options = backend_and_options(args)
        users = read_users(args.auth, args.auth_file)
        set_max_engines(args.max_engines)
    except InputError as exc:
        raise SystemExit(f"Error: {exc}") from exc
    models = [m.strip() for m in (args.models or "").split(",") if m.strip()]
    if on_zerogpu():  # every offered model loads at start-up there, and stays loaded
        models = list(dict.fromkeys([args.model, *models]))[:args.max_engines]
    holder = ModelHolder(ModelSettings(args.model, backend, args.max_length), engine_options=engine_options,
                         models=models, max_models=args.max_engines,
                         backends=[backend] if args.public else None,
                         max_length_limit=args.max_length if args.public else None,
                         check_at_load=not on_zerogpu(),  # on ZeroGPU a check would need a GPU call at start-up
                         limit_reason=demo_limits(args.model, zerogpu=on_zerogpu()).reason if args.public else "")
    if on_zerogpu():
        start_on_zerogpu(holder)
    else:
        holder.start()  # load in the background; the page shows "Loading…" until it is ready
    warmup.start()  # ranx's numba compilation and plotly, so the first comparison does not wait for them
    app = create_server(holder, max_documents=args.max_documents, api_key=args.api_key,
                        max_request_bytes=args.max_request_bytes, public=args.public, users=users,
                        runs_per_minute=args.runs_per_minute, queue_size=args.queue_size,
                        max_in_flight=args.max_in_flight, limits_note=args.limits_note)
    server = Server(app, args.host, args.port)
    if args.share:
        threading.Thread(target=_share, args=(server, args.host, args.port), daemon=True).start()
    mode = "public demo" if args.public else f"team server, {len(users)} user(s)" if users else "private"
    print(f"Relevance inspector on http://{args.host}:{args.port}/ (model {args.model}, backend {backend}, {mode}); "
          f"REST API at /v1/rerank and /v2/rerank{' (API key required)' if args.api_key else ''}")
    # uvicorn stops gracefully on SIGTERM, then raises the signal again under the handler it found: make that
    # an exit that runs the `finally` below rather than the default instant death.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        server.run()
    finally:
        shutdown_all()  # vLLM's engine processes would otherwise outlive the app, holding their memory


def start_on_zerogpu(holder: ModelHolder) -> None:
    """Load the offered models before serving, on the main thread (ZeroGPU's emulated CUDA exists only there), placed
    on ``cuda`` (emulated until a ``@spaces.GPU`` call lends the GPU); then run ZeroGPU's start-up step, which packs
    their weights for those calls: ZeroGPU runs it inside ``Blocks.launch``, which an app mounted on FastAPI never
    calls. A model not loaded here could not load later: ``main`` offers at most ``--max-engines`` models there."""
    import spaces.zero

    for model in holder.models:
        settings = ModelSettings(model, holder.default.backend, holder.default.max_length)
        holder.start(settings, in_this_thread=True).result()  # raises if it cannot load: the Space's log says why
    spaces.zero.startup()


def _share(server, host: str, port: int) -> None:
    """Open Gradio's share tunnel to this server once it is accepting connections."""
    from gradio import networking

    while not server.started:
        threading.Event().wait(0.2)
    try:
        url = networking.setup_tunnel(host, port, secrets.token_urlsafe(32), None, None)
        print(f"Public link (valid 1 week): {url}")
    except Exception as exc:  # no network, share server down: the local server keeps running
        log.warning("Could not create a share link: %s", exc)


if __name__ == "__main__":
    main()
