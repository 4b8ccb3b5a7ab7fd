"""A test collection from an ``ir_datasets`` id (``beir/scifact/test``, ``msmarco-passage/trec-dl-2019/judged``,
``miracl/ko/dev``, ...).

ir_datasets downloads a collection the first time and keeps it under ``IR_DATASETS_HOME`` (default
``~/.ir_datasets``); later loads read that copy and need no network. Some collections cannot be downloaded
automatically (their licence asks for a manual step); ir_datasets says what to do, and that message is shown.
Where the dataset has ``scoreddocs`` (a first-stage run, e.g. TREC DL's BM25 top 1000), they become the first
stage, and only the documents they name are read (through the dataset's document store) instead of the whole
corpus.
"""

from __future__ import annotations

import logging

from reranker.errors import InputError
from reranker.files.test_collection import TestCollection, drop_unknown, grade, title_and_text

log = logging.getLogger(__name__)


def _text(record) -> str:
    """A query's or document's text: ``default_text()`` where the record type has it (title + body for most
    document types), else its title and text fields."""
    default = getattr(record, "default_text", None)
    if callable(default):
        return default()
    return title_and_text(getattr(record, "title", None), getattr(record, "text", None))


def load(dataset_id: str) -> TestCollection:
    """The collection ``ir_datasets.load(dataset_id)`` names, with its scoreddocs as first stage if it has them."""
    try:
        import ir_datasets
    except ImportError as exc:
        raise InputError("ir_datasets is not installed: `pip install ir_datasets`.") from exc
    if not isinstance(dataset_id, str) or not dataset_id.strip():
        raise InputError("Give an ir_datasets id, e.g. beir/scifact/test.")
    try:
        dataset = ir_datasets.load(dataset_id.strip())
    except KeyError as exc:
        raise InputError(f"ir_datasets has no dataset {dataset_id!r} (ids look like beir/scifact/test; see "
                         "https://ir-datasets.com).") from exc
    try:
        return from_dataset(dataset, f"ir_datasets {dataset_id.strip()}")
    except (OSError, RuntimeError) as exc:  # a download that failed or needs a manual step
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"ir_datasets could not provide {dataset_id!r}: {reason}") from exc


def from_dataset(dataset, source: str) -> TestCollection:
    """A ``TestCollection`` from an ir_datasets dataset object (anything with ``queries_iter``, ``qrels_iter``,
    ``docs_iter`` / ``docs_store`` and optionally ``scoreddocs_iter``, yielding ir_datasets' record types)."""
    for part in ("queries", "qrels"):
        if not getattr(dataset, f"has_{part}")():
            raise InputError(f"{source} has no {part}: choose a dataset id with queries and qrels (often the one "
                             "ending in the split, e.g. beir/scifact/test).")
    if not dataset.has_docs():
        raise InputError(f"{source} has no documents.")
    queries = {q.query_id: _text(q) for q in dataset.queries_iter()}
    empty = [q for q, text in queries.items() if not text.strip()]
    queries = {q: t for q, t in queries.items() if t.strip()}
    raw_qrels: dict[str, dict[str, int]] = {}
    for qrel in dataset.qrels_iter():
        raw_qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = int(qrel.relevance)
    notes = [f"{len(empty):,} queries have no text (e.g. {empty[0]!r}): left out"] if empty else []
    run, first_stage = None, ""
    if getattr(dataset, "has_scoreddocs", lambda: False)():
        run = {}
        for scored in dataset.scoreddocs_iter():
            if scored.query_id in raw_qrels:
                run.setdefault(scored.query_id, {})[scored.doc_id] = float(scored.score)
        first_stage = "scoreddocs"
        needed = {d for docs in run.values() for d in docs} | {d for labels in raw_qrels.values() for d in labels}
        store = dataset.docs_store()
        documents = {doc_id: _text(doc) for doc_id, doc in store.get_many(needed).items()}
        log.info("read %d of the documents the run and qrels name", len(documents))
    else:
        documents = {doc.doc_id: _text(doc) for doc in dataset.docs_iter()}
    blank = [d for d, text in documents.items() if not text.strip()]
    if blank:
        notes.append(f"{len(blank):,} documents have no text (e.g. {blank[0]!r}): left out")
        documents = {d: t for d, t in documents.items() if t.strip()}
    qrels, dropped = drop_unknown(raw_qrels, queries, documents)
    qrels, graded = grade(qrels)
    if run is not None:
        unknown = sum(d not in documents for docs in run.values() for d in docs)
        if unknown:
            notes.append(f"{unknown:,} scored documents are missing from the documents: left out of the run")
            run = {q: {d: s for d, s in docs.items() if d in documents} for q, docs in run.items()}
    judged = {q: queries[q] for q in queries if q in qrels}
    return TestCollection(source, judged, documents, qrels, run=run, notes=tuple(notes + dropped + graded),
                          first_stage=first_stage)
