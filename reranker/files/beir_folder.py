"""A test collection in the BEIR folder layout: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

``corpus.jsonl``: one ``{"_id", "title", "text"}`` per line; ``queries.jsonl``: ``{"_id", "text"}``; the qrels:
``query-id<TAB>corpus-id<TAB>score`` with a header line (a TREC qrels file ``qid 0 docid label`` is read too).
Any of the files may be gzipped (``corpus.jsonl.gz``). The corpus is held in memory.
"""

from __future__ import annotations

import csv
from pathlib import Path

from reranker.errors import InputError
from reranker.files import rows, trec, trec_pairs
from reranker.files.test_collection import TestCollection, drop_unknown, grade


def _find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.jsonl", f"{stem}.jsonl.gz"):
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"{folder} has no {stem}.jsonl: a BEIR folder holds corpus.jsonl, queries.jsonl and "
                     "qrels/<split>.tsv.")


def splits(folder: str | Path) -> list[str]:
    """The qrels splits the folder has (``test``, ``dev``, ...), from the names of ``qrels/*.tsv``."""
    qrels = Path(folder) / "qrels"
    return sorted(p.name.split(".")[0] for p in qrels.glob("*.tsv*")) if qrels.is_dir() else []


def read_qrels_tsv(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels (``query-id corpus-id score``, a header line) or TREC qrels (``qid 0 docid label``)."""
    qrels: dict[str, dict[str, int]] = {}
    with rows.open_binary(path) as handle:
        lines = (raw.decode("utf-8-sig") for raw in handle)
        for number, fields in enumerate(csv.reader(lines, delimiter="\t"), start=1):
            if len(fields) == 1:  # TREC qrels are separated by spaces
                fields = fields[0].split()
            if not fields:
                continue
            if len(fields) == 4:
                fields = [fields[0], fields[2], fields[3]]
            if len(fields) != 3:
                raise InputError(f"{path.name} line {number}: expected query-id, corpus-id and score separated by "
                                 f"tabs, found {len(fields)} fields.")
            query_id, doc_id, label = (f.strip() for f in fields)
            try:
                value = int(float(label))
            except ValueError:
                if number == 1:  # the header
                    continue
                raise InputError(f"{path.name} line {number}: the score {label!r} is not a whole number.") from None
            qrels.setdefault(query_id, {})[doc_id] = value
    if not qrels:
        raise InputError(f"{path.name} holds no judgements.")
    return qrels


def read_beir(folder: str | Path, split: str = "test") -> TestCollection:
    """The collection in a BEIR folder, judged by ``qrels/<split>.tsv``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder: give the BEIR folder holding corpus.jsonl.")
    available = splits(folder)
    qrels_path = next((p for p in (folder / "qrels" / f"{split}.tsv", folder / "qrels" / f"{split}.tsv.gz")
                       if p.is_file()), None)
    if qrels_path is None:
        raise InputError(f"{folder} has no qrels/{split}.tsv (its splits: {', '.join(available) or 'none'}).")
    return read_beir_files(_find(folder, "corpus"), _find(folder, "queries"), qrels_path,
                           f"BEIR folder {folder.name} ({split})")


def read_beir_files(corpus: str | Path, queries: str | Path, qrels: str | Path, source: str) -> TestCollection:
    """The collection of a BEIR folder's three files, given one by one (as a page's uploads give them)."""
    texts = trec.read_topics(queries)
    documents, problems = trec_pairs.read_corpus(corpus)
    if not documents:
        raise InputError(f"{Path(corpus).name} holds no readable document ({'; '.join(problems[:3])}).")
    notes = [f"{len(problems):,} corpus entries could not be used, e.g. {problems[0]}"] if problems else []
    judgements, dropped = drop_unknown(read_qrels_tsv(Path(qrels)), texts, documents)
    judgements, graded = grade(judgements)
    judged = {q: texts[q] for q in texts if q in judgements}
    if len(judged) < len(texts):
        notes.append(f"{len(texts) - len(judged):,} queries are not judged in {Path(qrels).name}")
    return TestCollection(source, judged, documents, judgements, notes=tuple(notes + dropped + graded))
