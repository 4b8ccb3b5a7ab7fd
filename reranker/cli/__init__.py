"""Command line: ``python -m reranker rank|check|score|merge|verify|bakeoff ...``. Errors become one
``Error: ...`` line and exit code 2."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from pathlib import Path

from reranker.files.documents import SPLIT_MODES, split_text
from reranker.errors import InputError, RerankerError
from reranker.files.pair_tables import FORMATS, PairTable
from reranker.files.rows import DEFAULT_CHUNK_ROWS, Columns
from reranker.files.trec_pairs import TrecPairs
from reranker.jobs.job import BatchJob, Source
from reranker.jobs.locations import Location, as_location, is_url, local_copy
from reranker.jobs.shards import Shard
from reranker.scoring.inputs import check_query
from reranker.cli.model_flags import add_model_arguments, backend_and_options


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
    """``python -m reranker score``: exit 0 when done, 130 when interrupted (re-run to resume)."""
    if args.client_processes > 1 and not (args.servers or os.environ.get("RERANKER_SERVERS")):
        raise InputError("--client-processes spreads the work of a client of vLLM servers: give --servers too "
                         "(each process would otherwise load its own copy of the model).")
    if args.ray:
        return _score_on_ray(args)
    try:
        lines = run_score_job(args)
    except KeyboardInterrupt:
        return 130
    for line in lines:
        print(line)
    return 0


def run_score_job(args: argparse.Namespace, shard: Shard | None = None) -> list[str]:
    """Run the job ``score``'s arguments describe (or one shard of it); its closing report."""
    from reranker.jobs.runner import run_batch

    job = job_from_args(args, shard)
    return run_batch(job, functools.partial(load_reranker, args)).lines()  # partial: it pickles to workers


def _score_on_ray(args: argparse.Namespace) -> int:
    """``score --ray ADDRESS``: the job's shards as Ray tasks, then the merge."""
    from reranker.integrations.ray import run_shards_on_ray
    from reranker.jobs.manifest import check_shards
    from reranker.jobs.merge import merge_shards

    if args.shard:
        raise InputError("--ray runs every shard itself: give --ray-shards N, not --shard.")
    if args.top_k or args.top_k_out or args.rejects:
        raise InputError("--ray writes the merged scores and rejects; --top-k, --top-k-out and --rejects are for "
                         "one machine's job (or one --shard).")
    reports = run_shards_on_ray(functools.partial(run_score_job, args), args.ray_shards, address=args.ray,
                                gpus=args.ray_gpus, cpus=args.ray_cpus, retries=args.ray_retries)
    for index, lines in enumerate(reports, start=1):
        print(f"shard {index}/{args.ray_shards}: " + "; ".join(lines[:1]))
    output = as_location(args.output)
    shards = check_shards(output)
    for line in _merge_lines(shards, merge_shards(shards, output)):
        print(line)
    return 0


def _merge_lines(shards, written: list) -> list[str]:
    return ([f"{shards.count} shards: {shards.pairs} pairs scored, {shards.reject_count} rejects"]
            + [f"note: {n}" for n in shards.notes] + [f"wrote {w}" for w in written])


def cmd_merge(args: argparse.Namespace) -> int:
    """``python -m reranker merge OUTPUT``: check the shards of OUTPUT, then write it."""
    from reranker.jobs.manifest import check_shards
    from reranker.jobs.merge import merge_shards

    output = as_location(args.output)
    shards = check_shards(output)
    for line in _merge_lines(shards, merge_shards(shards, output)):
        print(line)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """``python -m reranker verify OUTPUT``: check the shards of OUTPUT are one complete, consistent job."""
    from reranker.jobs.manifest import check_shards

    shards = check_shards(as_location(args.output))
    first = shards.manifests[1]
    print(f"{shards.count} shards of one job: {shards.pairs} pairs scored, {shards.reject_count} rejects, "
          f"{first['input_rows']} input rows; model {first['scorer']['model_key']}, precision "
          f"{first['scorer']['precision']}, template {first['scorer']['template'][:12]}")
    for note in shards.notes:
        print(f"note: {note}")
    return 0


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``score`` command's own options."""
    defaults = Columns()
    parser.add_argument("input", metavar="INPUT",
                        help="pair table (.csv, .tsv, .jsonl, .parquet; .gz for text files), or a TREC run "
                             "with --topics and --corpus; a path or a URL (s3://, gs://, hf://)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="scores as FILE.parquet or FILE.jsonl, a path or a URL; the job file "
                             "FILE.job.sqlite3 goes next to a local FILE, into --job-dir for a URL")
    parser.add_argument("--top-k", type=int, metavar="K", help="also write each query's K best documents")
    parser.add_argument("--top-k-out", metavar="FILE",
                        help="top-k as FILE.csv or a TREC run FILE.trec (default: OUTPUT-stem.topK.csv)")
    parser.add_argument("--run-tag", default="qwen3-reranker", help="tag column of a TREC top-k file")
    parser.add_argument("--rejects", metavar="FILE",
                        help="rows that cannot be scored, as FILE.csv or FILE.jsonl "
                             "(default: OUTPUT-stem.rejects.csv, written when there are any)")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_ROWS, metavar="N",
                        help="rows per chunk; each chunk is committed on its own (default %(default)s)")
    parser.add_argument("--instruction", help="task instruction (default: the web-search instruction); "
                                              "a row's own instruction column wins")
    parser.add_argument("--restart", action="store_true", help="discard this output's job file and start over")
    parser.add_argument("--client-processes", type=int, default=1, metavar="N",
                        help="tokenize and send chunks from N worker processes, for --servers fleets that one "
                             "client process cannot keep busy (default %(default)s; docs/scale-out.md)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--job-dir", metavar="DIR",
                        help="folder for the job file when -o is a URL, and for local copies of URL inputs "
                             "(default: the current folder, or a local output's folder)")
    scale = parser.add_argument_group("shards and clusters (docs/scale-out.md)")
    scale.add_argument("--shard", type=_shard_argument, metavar="i/N",
                       help="score only shard i of N (rows split by a hash of the query id) into "
                            "OUTPUT-stem.shard-i-of-N.*, with a manifest; `merge OUTPUT` joins the shards")
    scale.add_argument("--ray", metavar="ADDRESS",
                       help="run the job's shards as tasks on the Ray cluster at ADDRESS (auto: the local one), "
                            "then merge them into OUTPUT")
    scale.add_argument("--ray-shards", type=int, default=8, metavar="N", help="shards of a --ray job "
                                                                              "(default %(default)s)")
    scale.add_argument("--ray-gpus", type=float, default=None, metavar="G",
                       help="GPUs per shard task (default: 1 when the cluster has GPUs, else 0)")
    scale.add_argument("--ray-cpus", type=float, default=1, metavar="C",
                       help="CPUs per shard task (default %(default)s)")
    scale.add_argument("--ray-retries", type=int, default=3, metavar="R",
                       help="times a shard task is run again after its worker or node died; it resumes from its "
                            "job file where that survived (default %(default)s)")
    tables = parser.add_argument_group("pair tables")
    tables.add_argument("--format", choices=FORMATS, help="input format (default: from the file name)")
    tables.add_argument("--delimiter", help="CSV/TSV delimiter (default: sniffed from the header)")
    for name in ("query_id", "query", "doc_id", "document", "instruction"):
        tables.add_argument(f"--{name.replace('_', '-')}-column", default=getattr(defaults, name), metavar="NAME",
                            help="default: %(default)s")
    tables.add_argument("--label-column", metavar="NAME", help="a column to carry into the output (e.g. relevance)")
    trec = parser.add_argument_group("TREC input (INPUT is a run file: qid Q0 docid rank score tag)")
    trec.add_argument("--topics", metavar="FILE", help="queries: qid<TAB>text lines, or JSONL (_id, text)")
    trec.add_argument("--corpus", metavar="FILE", help="documents: JSONL (_id, title, text) or docid<TAB>text lines")


def _shard_argument(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except InputError as exc:  # argparse shows an ArgumentTypeError's own words
        raise argparse.ArgumentTypeError(str(exc)) from None


def job_from_args(args: argparse.Namespace, shard: Shard | None = None) -> BatchJob:
    """The BatchJob that ``score``'s parsed arguments describe (``shard``: one shard of it, overriding --shard)."""
    shard = shard or args.shard
    output: Location = as_location(args.output)
    if shard:
        output = shard.output(output)
    job_dir = Path(args.job_dir) if args.job_dir else (output.resolve().parent if isinstance(output, Path) else None)
    inputs_dir = (job_dir or Path.cwd()) / ".reranker-inputs"

    def local(name: str) -> Path:  # a URL input is read from a local copy
        return local_copy(name, inputs_dir) if is_url(name) else Path(name)

    if bool(args.topics) != bool(args.corpus):
        raise InputError("A TREC input needs both --topics and --corpus.")
    if args.topics:
        source: Source = TrecPairs(local(args.input), local(args.topics), local(args.corpus),
                                   workdir=job_dir or Path.cwd())
    else:
        columns = Columns(query_id=args.query_id_column, query=args.query_column, doc_id=args.doc_id_column,
                          document=args.document_column, instruction=args.instruction_column or None,
                          label=args.label_column)
        delimiter = {"\\t": "\t", "tab": "\t"}.get(args.delimiter, args.delimiter)
        if delimiter is not None and len(delimiter) != 1:
            raise InputError(f"The delimiter must be one character (or \\t or tab), got {args.delimiter!r}.")
        source = PairTable(local(args.input), columns, args.format, delimiter)
    return BatchJob(
        source=source, output=output, model=args.model, instruction=args.instruction,
        max_length=args.max_length, chunk_rows=args.chunk_size, top_k=args.top_k,
        top_k_out=as_location(args.top_k_out) if args.top_k_out else None, run_tag=args.run_tag,
        rejects_out=as_location(args.rejects) if args.rejects else None, restart=args.restart,
        progress=not args.no_progress, client_processes=args.client_processes, shard=shard, job_dir=job_dir,
    )


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

    for name, handler, what in (("merge", cmd_merge, "check a job's shards, then write the merged OUTPUT"),
                                ("verify", cmd_verify, "check a job's shards are complete and scored alike")):
        command = commands.add_parser(name, help=what + " (docs/scale-out.md)")
        command.add_argument("output", metavar="OUTPUT", help="the -o the shards were run with (a path or URL)")
        command.add_argument("-v", "--verbose", action="store_true", help="show the libraries' logs")
        command.set_defaults(handler=handler)

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


def command() -> int:
    """The ``reranker`` command (``python -m reranker``): :func:`main`, then every engine of the process closed in
    order rather than torn down with the interpreter, where vLLM's could abort the exit of a finished job."""
    from reranker.scoring.backends import shutdown_all

    try:
        return main()
    finally:
        shutdown_all()
