"""The model and backend flags the app (``app.py``) and the command line (``python -m reranker``) share: one
definition, one set of defaults, one rule for turning them into a backend and its engine options."""

from __future__ import annotations

import argparse
import os

from reranker.errors import InputError
from reranker.scoring.backends import BACKENDS
from reranker.scoring.engine import DEFAULT_MAX_LENGTH

DEFAULT_MODEL_NAME = "0.6B"  # a MODELS key: Qwen/Qwen3-Reranker-0.6B


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--model``, ``--backend``, ``--servers``, ``--servers-api-key`` and ``--max-length`` to ``parser``."""
    parser.add_argument("--model", default=os.environ.get("RERANKER_MODEL", DEFAULT_MODEL_NAME),
                        help="0.6B, 4B, 8B, a hub id or a local folder (env RERANKER_MODEL; default %(default)s)")
    parser.add_argument("--backend", default=os.environ.get("RERANKER_BACKEND", "auto"), choices=list(BACKENDS),
                        help="scoring backend (env RERANKER_BACKEND; default %(default)s; remote when --servers "
                             "is given)")
    parser.add_argument("--servers", "--server", action="append", dest="servers", metavar="URL[,URL...]",
                        help="score on these vLLM servers (backend remote; comma-separated or repeated; "
                             "env RERANKER_SERVERS); see docs/scale-out.md")
    parser.add_argument("--servers-api-key", default=os.environ.get("RERANKER_SERVERS_API_KEY"),
                        help="bearer token the vLLM servers were started with (env RERANKER_SERVERS_API_KEY)")
    parser.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH,
                        help="prompt token limit; only documents are cut (default %(default)s)")


def remote_options(backend: str, servers: list[str] | None, api_key: str | None) -> tuple[str, dict]:
    """The backend to use and its engine options: servers (else $RERANKER_SERVERS) select the remote backend."""
    from reranker.scoring.backends.remote_backend import parse_servers

    if not servers and backend in ("auto", "remote") and os.environ.get("RERANKER_SERVERS"):
        servers = [os.environ["RERANKER_SERVERS"]]
    if not servers:
        if backend == "remote":
            raise InputError("--backend remote needs --servers URL[,URL...] (or RERANKER_SERVERS).")
        return backend, {}
    if backend not in ("auto", "remote"):
        raise InputError(f"--servers scores on vLLM servers: use --backend remote (or auto), not {backend}.")
    options = {"servers": parse_servers(",".join(servers))}
    if api_key:
        options["api_key"] = api_key
    return "remote", options


def backend_and_options(args: argparse.Namespace) -> tuple[str, dict]:
    """:func:`remote_options` for parsed :func:`add_model_arguments` flags."""
    return remote_options(args.backend, args.servers, args.servers_api_key)
