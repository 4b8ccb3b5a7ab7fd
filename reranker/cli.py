"""Command line: ``python -m reranker rank|check ...``. Errors become one ``Error: ...`` line and exit code 2."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from pathlib import Path

from reranker.errors import InputError, RerankerError
from reranker.jobs.batch import add_score_arguments
from reranker.scoring.model_flags import add_model_arguments, backend_and_options

SPLITS = {"line": "one document per line", "blank": "documents separated by blank lines",
          "dashes": "documents separated by a line of ---"}


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options every command that loads a model shares: the app's model flags, plus the cache and log switches."""
    add_model_arguments(parser)
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the score cache")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the engines' logs")


def load_reranker(args: argparse.Namespace):
    """The Reranker the shared model options describe."""
    from reranker.scoring.engine import Reranker

    backend, options = backend_and_options(args)
    return Reranker(args.model, backend=backend, max_length=args.max_length,
                    cache=not args.no_cache, **options)


def split_documents(text: str, split: str) -> list[str]:
    """Documents in ``text``: one per line, or separated by blank lines or by ``---`` lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if split == "line":
        return [line.strip() for line in lines if line.strip()]
    chunks, current = [], []
    for line in lines:
        is_break = (not line.strip()) if split == "blank" else line.strip() == "---"
        if is_break:
            chunks.append("\n".join(current))
            current = []
        else:
            current.append(line)
    chunks.append("\n".join(current))
    return [c.strip() for c in chunks if c.strip()]


def read_documents(path: str, split: str) -> list[str]:
    """Documents from a UTF-8 text file, or from standard input for ``-``."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror}.") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start} is invalid); convert it to UTF-8.") from exc
    documents = split_documents(text, split)
    if not documents:
        raise InputError(f"{path} holds no documents ({SPLITS[split]}).")
    return documents


def cmd_rank(args: argparse.Namespace) -> int:
    import pandas as pd

    documents = read_documents(args.docs, args.split)
    reranker = load_reranker(args)
    ranked = reranker.rank(args.query, documents, instruction=args.instruction, top_k=args.top_k)
    table = pd.DataFrame(
        [{"rank": n, **j.as_dict()} for n, j in enumerate(ranked, start=1)]
    ).drop(columns=["query"])
    print_table(table)
    if args.output:
        write_table(table, args.output)
        print(f"wrote {len(table)} rows to {args.output}", file=sys.stderr)
    return 0


def print_table(table) -> None:
    """A ranked table on the terminal (rich when it is a terminal, plain text otherwise)."""
    shown = table[["rank", "index", "score", "confidence", "truncated", "cached", "document"]].copy()
    shown["document"] = shown["document"].str.replace(r"\s+", " ", regex=True).str.slice(0, 80)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        rich_table = Table(*shown.columns)
        for row in shown.itertuples(index=False):
            rich_table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
        Console().print(rich_table)
    else:
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def write_table(table, path: str) -> None:
    """Write CSV or JSON, chosen by the file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        table.to_csv(path, index=False)
    elif suffix == ".json":
        table.to_json(path, orient="records", force_ascii=False, indent=2)
    else:
        raise InputError(f"Cannot write {path}: use a .csv or .json file name.")


def cmd_check(args: argparse.Namespace) -> int:
    from reranker.scoring.check import run_check

    reranker = load_reranker(args)
    report = run_check(reranker)
    print(f"{reranker.model} on {reranker.backend_name} ({reranker.device})")
    print(report.summary())
    return 0 if report.passed else 1


def cmd_score(args: argparse.Namespace) -> int:
    from reranker.jobs.batch import run_score_command

    if args.client_processes > 1 and not (args.servers or os.environ.get("RERANKER_SERVERS")):
        raise InputError("--client-processes spreads the work of a client of vLLM servers: give --servers too "
                         "(each process would otherwise load its own copy of the model).")
    return run_score_command(args, functools.partial(load_reranker, args))  # partial: it pickles to workers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reranker", description="Qwen3-Reranker relevance judgements.")
    commands = parser.add_subparsers(dest="command", required=True)

    rank = commands.add_parser("rank", help="rank documents from a file against a query")
    rank.add_argument("--query", required=True)
    rank.add_argument("--docs", required=True, metavar="FILE", help="UTF-8 text file of documents, or - for stdin")
    rank.add_argument("--split", choices=list(SPLITS), default="line",
                      help="; ".join(f"{k}: {v}" for k, v in SPLITS.items()) + " (default %(default)s)")
    rank.add_argument("--instruction", help="task instruction (default: the web-search instruction)")
    rank.add_argument("--top-k", type=int)
    rank.add_argument("-o", "--output", metavar="FILE", help="also write the ranking to FILE.csv or FILE.json")
    add_model_options(rank)
    rank.set_defaults(handler=cmd_rank)

    check = commands.add_parser("check", help="known-answer check: does the model separate canary pairs?")
    add_model_options(check)
    check.set_defaults(handler=cmd_check)

    score = commands.add_parser("score", help="score a file of pairs in resumable chunks (docs/batch.md)")
    add_score_arguments(score)
    add_model_options(score)
    score.set_defaults(handler=cmd_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except RerankerError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
