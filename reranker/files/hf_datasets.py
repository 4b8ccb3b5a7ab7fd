"""A test collection from a Hugging Face dataset in the MTEB layouts, by hub id or local folder.

- **Retrieval layout** (``mteb/scifact``, ``mteb/miracl``...): configurations ``corpus`` (``_id`` or ``id``,
  ``title``, ``text``), ``queries`` (``_id`` or ``id``, ``text``) and ``default`` or ``qrels`` (``query-id``,
  ``corpus-id``, ``score``) with one split per qrels set (``test``, ``dev``). A ``top_ranked`` configuration
  (``query-id``, ``corpus-ids``: MTEB's reranking tasks) gives each query's candidates, without scores.
- **Reranking layout** (older MTEB reranking sets such as ``mteb/askubuntudupquestions-reranking``): rows of
  ``query``, ``positive`` (texts) and ``negative`` (texts); queries are named ``q1``, ``q2``... in row order and
  documents ``d-`` + the start of their text's sha256 (as the judgement exports name them), so one text is one
  document. Positives are judged 2, negatives 0, and
  each query's candidates are its positives and negatives.

Loading goes through ``datasets.load_dataset``, so the hub cache and ``HF_DATASETS_OFFLINE=1`` apply as usual.
"""

from __future__ import annotations

from reranker.errors import InputError
from reranker.files.test_collection import TestCollection, drop_unknown, grade, title_and_text
from reranker.files.judgement_files import doc_id as export_doc_id
from reranker.storage.judgements import document_hash

QRELS_CONFIGS = ("default", "qrels")


def _datasets():
    try:
        import datasets
    except ImportError as exc:
        raise InputError("The datasets library is not installed: `pip install datasets`.") from exc
    return datasets


def _split(loaded, wanted: str, what: str):
    """The ``wanted`` split of a DatasetDict, or its only split."""
    names = list(loaded)
    if wanted in names:
        return loaded[wanted]
    if len(names) == 1:
        return loaded[names[0]]
    raise InputError(f"The {what} have no split {wanted!r} (they have {', '.join(names)}): choose one of those.")


def _column(table, names: tuple[str, ...], what: str) -> str:
    found = next((n for n in names if n in table.column_names), None)
    if found is None:
        raise InputError(f"The {what} have no column {' or '.join(map(repr, names))} (their columns: "
                         f"{', '.join(table.column_names)}): this is not the MTEB layout.")
    return found


def load(source: str, split: str = "test", *, revision: str | None = None) -> TestCollection:
    """The collection of the dataset ``source`` (hub id or local folder), judged by its ``split``."""
    datasets = _datasets()
    if not isinstance(source, str) or not source.strip():
        raise InputError("Give a Hugging Face dataset id (e.g. mteb/scifact) or a local dataset folder.")
    source = source.strip()
    try:
        configs = datasets.get_dataset_config_names(source, revision=revision)
    except Exception as exc:  # the hub client raises many types; each becomes one plain message
        raise InputError(f"Cannot open the dataset {source!r}: {str(exc).splitlines()[0] if str(exc) else exc}"
                         ) from exc

    def table(config: str | None, what: str):
        try:
            return _split(datasets.load_dataset(source, config, revision=revision), split, what)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"Cannot load the {what} of {source!r}: {str(exc).splitlines()[0]}") from exc

    if {"corpus", "queries"} <= set(configs):
        qrels_config = next((c for c in QRELS_CONFIGS if c in configs), None)
        if qrels_config is None:
            raise InputError(f"{source} has corpus and queries but no qrels configuration "
                             f"({' or '.join(QRELS_CONFIGS)}); its configurations: {', '.join(configs)}.")
        top_ranked = table("top_ranked", "top-ranked lists") if "top_ranked" in configs else None
        return _retrieval(source, split, table("corpus", "corpus"), table("queries", "queries"),
                          table(qrels_config, "qrels"), top_ranked)
    rows = table(configs[0] if configs else None, "rows")
    if {"query", "positive", "negative"} <= set(rows.column_names):
        return _reranking(source, split, rows)
    raise InputError(f"{source} is in neither MTEB layout: expected configurations corpus, queries and default "
                     f"(retrieval) or columns query, positive, negative (reranking); it has configurations "
                     f"{', '.join(configs) or 'none'} and columns {', '.join(rows.column_names)}.")


def _retrieval(source: str, split: str, corpus, queries, qrels_table, top_ranked) -> TestCollection:
    doc_id = _column(corpus, ("_id", "id"), "corpus")
    titles = corpus["title"] if "title" in corpus.column_names else [None] * len(corpus)
    texts = corpus[_column(corpus, ("text",), "corpus")]
    documents = {}
    blank = 0
    for identifier, title, text in zip(corpus[doc_id], titles, texts):
        joined = title_and_text(title, text)
        if joined:
            documents.setdefault(str(identifier), joined)
        else:
            blank += 1
    query_id = _column(queries, ("_id", "id"), "queries")
    query_texts = {str(q): t for q, t in zip(queries[query_id], queries[_column(queries, ("text",), "queries")])
                   if isinstance(t, str) and t.strip()}
    qid, cid = (_column(qrels_table, names, "qrels") for names in (("query-id", "query_id"),
                                                                     ("corpus-id", "corpus_id", "doc-id")))
    raw: dict[str, dict[str, int]] = {}
    for q, d, s in zip(qrels_table[qid], qrels_table[cid], qrels_table[_column(qrels_table, ("score",), "qrels")]):
        raw.setdefault(str(q), {})[str(d)] = int(s)
    notes = [f"{blank:,} corpus rows have no text: left out"] if blank else []
    if len(query_texts) < len(queries):
        notes.append(f"{len(queries) - len(query_texts):,} queries have no text: left out")
    qrels, dropped = drop_unknown(raw, query_texts, documents)
    qrels, graded = grade(qrels)
    candidates = None
    if top_ranked is not None:
        tq = _column(top_ranked, ("query-id", "query_id"), "top-ranked lists")
        tc = _column(top_ranked, ("corpus-ids", "corpus_ids"), "top-ranked lists")
        candidates = {str(q): [str(d) for d in ids if str(d) in documents]
                      for q, ids in zip(top_ranked[tq], top_ranked[tc]) if str(q) in qrels}
    judged = {q: t for q, t in query_texts.items() if q in qrels}
    return TestCollection(f"Hugging Face dataset {source} ({split})", judged, documents, qrels,
                          candidates=candidates, notes=tuple(notes + dropped + graded))


def _reranking(source: str, split: str, rows) -> TestCollection:
    queries, documents, qrels, candidates = {}, {}, {}, {}
    skipped = 0
    for number, (query, positives, negatives) in enumerate(zip(rows["query"], rows["positive"], rows["negative"]),
                                                           start=1):
        if not isinstance(query, str) or not query.strip() or not (positives or negatives):
            skipped += 1
            continue
        query_id = f"q{number}"
        queries[query_id] = query
        labels: dict[str, int] = {}
        for texts, label in ((positives or [], 2), (negatives or [], 0)):
            for text in texts:
                if isinstance(text, str) and text.strip():
                    doc_id = export_doc_id(document_hash(text))
                    documents[doc_id] = text
                    labels.setdefault(doc_id, label)  # a text that is both positive and negative counts as positive
        qrels[query_id] = labels
        candidates[query_id] = list(labels)
    notes = (f"{skipped:,} rows without a query or without documents: left out",) if skipped else ()
    return TestCollection(f"Hugging Face dataset {source} ({split}, reranking layout)", queries, documents, qrels,
                          candidates=candidates, notes=notes)
