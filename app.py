"""Qwen3-Reranker relevance inspector: one FastAPI server with the Gradio page mounted at "/".

    python app.py [--model 0.6B|4B|8B|PATH] [--backend auto|vllm|transformers] [--host H] [--port P] [--share]
    python app.py --model 0.6B --servers http://gpu1:8000,http://gpu2:8000    (scores on vLLM servers)

The model comes from ``--model``, else ``$RERANKER_MODEL``, else Qwen3-Reranker-0.6B. It is loaded once in
the background when the server starts and shared by every user; runs are queued one at a time.
On a Hugging Face Space, this file is the ``app_file``.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

import gradio as gr
from fastapi import FastAPI

from reranker.serve.api import API_KEY_ENV, DEFAULT_MAX_REQUEST_BYTES, install_api
from reranker.cli import remote_options
from reranker.files.documents import MAX_DOCUMENTS, MAX_UPLOAD_BYTES
from reranker.scoring.backends import BACKENDS
from reranker.scoring.engine import DEFAULT_MAX_LENGTH
from reranker.errors import InputError
from reranker.scoring.backends import shutdown_all
from reranker.scoring.model_holder import ModelHolder, ModelSettings
from reranker.scoring.prompt import INSTRUCTION_PRESETS
from reranker.storage.presets import PresetStore
from reranker.storage.database import Database, default_data_dir
from reranker.ui.page import CSS_PATH, build_app

log = logging.getLogger("app")
THEME = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")


def create_server(holder: ModelHolder, *, data_dir=None, max_documents: int = MAX_DOCUMENTS, api_key: str | None = None,
                  max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> FastAPI:
    """The whole server: a FastAPI app (REST API + Gradio page at "/"), sharing one ModelHolder."""
    presets = PresetStore(Database(Path(data_dir or default_data_dir()) / "reranker.sqlite3"), INSTRUCTION_PRESETS)
    demo = build_app(holder, presets, max_documents=max_documents)
    server = FastAPI(title="Qwen3 Reranker")
    # the REST API's routes come before Gradio is mounted at "/" (Gradio's catch-all routes must come last)
    install_api(server, holder, api_key=api_key, max_documents=max_documents, max_request_bytes=max_request_bytes)

    return gr.mount_gradio_app(server, demo, path="/", theme=THEME, css_paths=[CSS_PATH],
                               max_file_size=MAX_UPLOAD_BYTES, footer_links=["api"])


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.environ.get("RERANKER_MODEL", "0.6B"),
                        help="0.6B, 4B, 8B, a hub id or a local folder (default: $RERANKER_MODEL or 0.6B)")
    parser.add_argument("--backend", default=os.environ.get("RERANKER_BACKEND", "auto"),
                        choices=list(BACKENDS),
                        help="scoring backend (default: auto; remote when --servers is given)")
    parser.add_argument("--servers", action="append", metavar="URL[,URL...]",
                        help="score on these vLLM servers (env RERANKER_SERVERS); see docs/scale-out.md")
    parser.add_argument("--servers-api-key", default=os.environ.get("RERANKER_SERVERS_API_KEY"),
                        help="bearer token the vLLM servers were started with (env RERANKER_SERVERS_API_KEY)")
    parser.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH, help="tokens per prompt")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                        help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", help="also publish a temporary public gradio.live link")
    parser.add_argument("--max-documents", type=int, default=MAX_DOCUMENTS, help="documents per run or API request")
    parser.add_argument("--api-key", default=os.environ.get(API_KEY_ENV),
                        help=f"require 'Authorization: Bearer KEY' on the REST API (default: ${API_KEY_ENV}; none)")
    parser.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES,
                        help=f"largest REST API request body (default: {DEFAULT_MAX_REQUEST_BYTES:,})")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    import uvicorn

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        backend, engine_options = remote_options(args.backend, args.servers, args.servers_api_key)
    except InputError as exc:
        raise SystemExit(f"Error: {exc}") from exc
    holder = ModelHolder(ModelSettings(args.model, backend, args.max_length), engine_options=engine_options)
    holder.start()  # load in the background; the page shows "Loading…" until it is ready
    app = create_server(holder, max_documents=args.max_documents, api_key=args.api_key,
                        max_request_bytes=args.max_request_bytes)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning"))
    if args.share:
        threading.Thread(target=_share, args=(server, args.host, args.port), daemon=True).start()
    print(f"Relevance inspector on http://{args.host}:{args.port}/ (model {args.model}, backend {backend}); "
          f"REST API at /v1/rerank and /v2/rerank{' (API key required)' if args.api_key else ''}")
    # uvicorn stops gracefully on SIGTERM, then raises the signal again under the handler it found: make that
    # an exit that runs the `finally` below rather than the default instant death.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        server.run()
    finally:
        shutdown_all()  # vLLM's engine processes would otherwise outlive the app, holding their memory


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
