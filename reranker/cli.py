"""Command line: ``python -m reranker rank|check|score|bakeoff ...``. Errors become one ``Error: ...`` line and
exit code 2."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from pathlib import Path

from reranker.files.documents import SPLIT_MODES, split_text
from reranker.errors import InputError, RerankerError
from reranker.jobs.batch import add_score_arguments
from reranker.scoring.inputs import check_query
from reranker.scoring.model_flags import add_model_arguments, backend_and_options


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
    documents = split_text(text, split)
    if not documents:
        raise InputError(f"{path} holds no documents ({SPLIT_MODES[split].lower()}).")
    return documents


def cmd_rank(args: argparse.Namespace) -> int:
    import pandas as pd

    check_query(args.query)  # before the model loads
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


def _named_prices(values: list[str] | None, flag: str) -> dict[str, float]:
    prices = {}
    for value in values or []:
        name, sep, price = value.rpartition("=")
        try:
            prices[name] = float(price)
        except ValueError:
            raise InputError(f"{flag} takes NAME=NUMBER, got {value!r}.") from None
        if not sep or not name:
            raise InputError(f"{flag} takes NAME=NUMBER, got {value!r}.")
    return prices


def bakeoff_variants(args: argparse.Namespace) -> list[dict]:
    """The variants the bake-off flags describe: every --qwen model (default --model) with every --instruction,
    each --cross-encoder, each --endpoint, then those of --variants FILE; prices by row name."""
    import json

    variants: list[dict] = []
    if not args.no_qwen:
        for model in args.qwen or [args.model]:
            for instruction in args.instruction or [None]:
                spec = {"kind": "qwen", "model": model, "max_length": args.max_length}
                if instruction:
                    spec["instruction"] = instruction
                variants.append(spec)
        if len(args.instruction or []) > 1:
            for number, spec in enumerate(variants, start=1):
                spec["name"] = f"{Path(spec['model']).name} · instruction {number}"
    variants += [{"kind": "cross-encoder", "model": model} for model in args.cross_encoder or []]
    for value in args.endpoint or []:
        parts = value.split(",")
        if len(parts) not in (2, 3):
            raise InputError(f"--endpoint takes URL,MODEL[,KEY_ENV], got {value!r}.")
        variants.append({"kind": "endpoint", "url": parts[0], "model": parts[1],
                         **({"key_env": parts[2]} if len(parts) == 3 else {})})
    if args.variants:
        try:
            loaded = json.loads(Path(args.variants).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"Cannot read the variants file {args.variants}: {exc}") from exc
        if not isinstance(loaded, list) or not all(isinstance(v, dict) for v in loaded):
            raise InputError(f"{args.variants} must hold a JSON list of variant objects (docs/bakeoff.md).")
        variants += loaded
    if not variants:
        raise InputError("No reranker to compare: drop --no-qwen, or give --cross-encoder, --endpoint or --variants.")
    return variants


def cmd_bakeoff(args: argparse.Namespace) -> int:
    from reranker.bakeoff import board as bakeoff_board, report
    from reranker.bakeoff.run import run_bakeoff
    from reranker.bakeoff.sources import load_collection
    from reranker.bakeoff.variants import build_contenders

    kinds = {"beir": args.beir, "ir_datasets": args.ir_datasets, "hf": args.hf_dataset, "search": args.search_responses}
    given = [(kind, value) for kind, value in kinds.items() if value]
    if len(given) != 1:
        raise InputError("Give exactly one data source: --beir DIR, --ir-datasets ID, --hf-dataset ID or "
                         "--search-responses FILE (with --qrels).")
    variants = bakeoff_variants(args)
    collection = load_collection(*given[0], split=args.split, qrels=args.qrels, topics=args.topics,
                                 text_field=args.text_field, sample=args.sample, seed=args.seed)
    print(collection.summary().to_string(index=False), file=sys.stderr)
    backend, options = backend_and_options(args)
    for spec in variants:
        if spec["kind"] == "qwen":
            spec.setdefault("backend", backend)
    contenders = build_contenders(variants, cache=not args.no_cache, engine_options=options)
    prices, hourly = _named_prices(args.price, "--price"), _named_prices(args.hourly, "--hourly")
    unknown = (set(prices) | set(hourly)) - {c.name for c in contenders}
    if unknown:
        raise InputError(f"--price/--hourly name no variant: {', '.join(sorted(unknown))} (the variants: "
                         f"{', '.join(c.name for c in contenders)}).")
    for contender in contenders:
        contender.price_per_1k_pairs = prices.get(contender.name, contender.price_per_1k_pairs)
        contender.price_per_hour = hourly.get(contender.name, contender.price_per_hour)

    def progress(done, total, eta, name):
        print(f"\r{name}: {done:,}/{total:,} pairs, {eta or 0:.0f} s left   ", end="", file=sys.stderr, flush=True)

    result = run_bakeoff(collection, contenders, depth=args.depth, progress=progress)
    print(file=sys.stderr)
    board = bakeoff_board.build(result, k=args.k, relevant_from=args.relevant_from, stat_test=args.test,
                                seed=args.seed)
    print(board.display().to_string(index=False))
    print(f"\n{board.board.test_description}, Holm-corrected, alpha {board.board.alpha}; measured on {result.machine}")
    if args.output:
        report.write_html(args.output, board, contenders=contenders)
        print(f"wrote the report to {args.output}", file=sys.stderr)
    if args.csv:
        report.leaderboard_csv(board, args.csv)
        print(f"wrote the leaderboard to {args.csv}", file=sys.stderr)
    return 0


def add_bakeoff_arguments(parser: argparse.ArgumentParser) -> None:
    """The bake-off's data, variant and statistics flags."""
    data = parser.add_argument_group("data (one source)")
    data.add_argument("--beir", metavar="DIR", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    data.add_argument("--ir-datasets", metavar="ID", help="an ir_datasets id, e.g. beir/scifact/test")
    data.add_argument("--hf-dataset", metavar="ID", help="Hugging Face dataset in the MTEB layout (id or folder)")
    data.add_argument("--search-responses", metavar="FILE",
                      help="Elasticsearch/OpenSearch _search responses (JSONL, JSON or _msearch; needs --qrels)")
    data.add_argument("--qrels", metavar="FILE", help="TREC qrels for --search-responses")
    data.add_argument("--topics", metavar="FILE", help="query texts (qid<TAB>text or JSONL) for --search-responses")
    data.add_argument("--text-field", help="the _source field holding a hit's text (default: text, content, ...)")
    data.add_argument("--split", default="test", help="qrels split (default %(default)s)")
    data.add_argument("--sample", type=int, metavar="N", help="measure N queries drawn with --seed (default: all)")
    data.add_argument("--seed", type=int, default=0, help="seed of the sample and the tests (default %(default)s)")
    data.add_argument("--depth", type=int, default=100, help="first-stage candidates per query (default %(default)s)")
    rivals = parser.add_argument_group("rerankers")
    rivals.add_argument("--qwen", action="append", metavar="MODEL",
                        help="a Qwen3-Reranker size or folder to include (repeatable; default: --model)")
    rivals.add_argument("--instruction", action="append", metavar="TEXT",
                        help="an instruction for the Qwen models (repeatable: each is one more row)")
    rivals.add_argument("--no-qwen", action="store_true", help="leave Qwen3-Reranker out")
    rivals.add_argument("--cross-encoder", action="append", metavar="MODEL",
                        help="a Sentence-Transformers CrossEncoder (hub id or folder; repeatable)")
    rivals.add_argument("--endpoint", action="append", metavar="URL,MODEL[,KEY_ENV]",
                        help="a Cohere/vLLM-compatible /rerank endpoint, its model and the environment variable "
                             "holding its key (repeatable)")
    rivals.add_argument("--variants", metavar="FILE", help="JSON list of variants (docs/bakeoff.md)")
    rivals.add_argument("--price", action="append", metavar="NAME=USD",
                        help="price per 1,000 pairs of a row (repeatable)")
    rivals.add_argument("--hourly", action="append", metavar="NAME=USD",
                        help="machine price per hour of a row: cost per 1,000 pairs from the measured speed")
    stats = parser.add_argument_group("leaderboard")
    stats.add_argument("-k", type=int, default=10, help="cut-off of nDCG@k and P@k (default %(default)s)")
    stats.add_argument("--relevant-from", type=int, choices=[1, 2], default=1,
                       help="label counted relevant by MRR, MAP, P@k (default %(default)s)")
    stats.add_argument("--test", choices=["fisher", "student"], default="fisher",
                       help="paired test: randomisation (fisher) or t-test (default %(default)s)")
    parser.add_argument("-o", "--output", metavar="FILE.html", help="write the one-file HTML report")
    parser.add_argument("--csv", metavar="FILE.csv", help="write the leaderboard as CSV")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reranker", description="Qwen3-Reranker relevance judgements.")
    commands = parser.add_subparsers(dest="command", required=True)

    rank = commands.add_parser("rank", help="rank documents from a file against a query")
    rank.add_argument("--query", required=True)
    rank.add_argument("--docs", required=True, metavar="FILE", help="UTF-8 text file of documents, or - for stdin")
    rank.add_argument("--split", choices=list(SPLIT_MODES), default="line",
                      help="; ".join(f"{k}: {v.lower()}" for k, v in SPLIT_MODES.items()) + " (default %(default)s)")
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

    bakeoff = commands.add_parser("bakeoff", help="rerankers side by side against no rerank on a test collection "
                                                  "(docs/bakeoff.md)")
    add_bakeoff_arguments(bakeoff)
    add_model_options(bakeoff)
    bakeoff.set_defaults(handler=cmd_bakeoff)
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
