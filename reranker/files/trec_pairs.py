"""Pairs named by TREC ids, with their texts: a run (or qrels) joined with its topics and corpus.

Each run line ``qid Q0 docid rank score tag`` (or qrels line) is one pair; the query text comes from the topics
file and the document text from the corpus. Lines that cannot be paired become ``RejectRow``s that say why.

Memory: one chunk of rows at a time. The topics are held in memory (a dict of query id to text); the documents
the lines need are copied from the corpus into a temporary SQLite file, so neither the corpus nor the set of
needed document ids is held in memory.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from reranker.errors import InputError
from reranker.files.columns import CORPUS_KEYS, pick
from reranker.files.rows import (DEFAULT_CHUNK_ROWS, PairRow, RejectRow, Row, as_id, as_text, batched,
                                 count_nonblank_lines, decoded_lines, make_excerpt)
from reranker.files.trec import QrelsLine, RunLine, is_jsonl, read_topics, run_rows

log = logging.getLogger(__name__)

TrecLine = QrelsLine | RunLine


@dataclass(frozen=True)
class TrecPairs:
    """Pairs named by a TREC run (``qid Q0 docid rank score tag``), with topics and a corpus for the texts.

    Topics: TSV ``qid<TAB>text`` or JSONL. Corpus: JSONL (BEIR-style ``_id``, ``title``, ``text``;
    also ``id``/``docid`` and ``contents``) or TSV ``docid<TAB>text``. A title is put before the text,
    separated by a space. ``.gz`` files are read as they are decompressed.
    """

    run: Path
    topics: Path
    corpus: Path
    workdir: Path | None = None  # where the temporary document lookup goes (default: the system temp folder)

    def __post_init__(self):
        for name in ("run", "topics", "corpus"):
            path = Path(getattr(self, name))
            object.__setattr__(self, name, path)
            if not path.is_file():
                raise InputError(f"Cannot read the {name} file {path}: there is no such file.")

    def files(self) -> list[Path]:
        return [self.run, self.topics, self.corpus]

    def describe(self) -> dict:
        return {"kind": "trec"}

    def count_rows(self) -> int | None:
        return None if self.run.suffix.lower() == ".gz" else count_nonblank_lines(self.run)

    def chunks(self, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[list[Row]]:
        """Lists of at most ``chunk_rows`` rows (pairs and rejects), one per run line, in file order."""
        return joined_chunks(lambda: run_rows(self.run), self.topics, self.corpus, chunk_rows, self.workdir)


def iter_trec_chunks(run: str | Path, topics: str | Path, corpus: str | Path,
                     chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[list[Row]]:
    """Chunks of ``PairRow`` / ``RejectRow``, one per run line, texts looked up in the topics and corpus."""
    return TrecPairs(Path(run), Path(topics), Path(corpus)).chunks(chunk_rows)


def _corpus_entries(path: Path) -> Iterator[tuple[int, str | None, str | None, str | None]]:
    """(line, docid, text, problem) per corpus line; docid None when the line cannot be read at all."""
    jsonl = is_jsonl(path)
    for number, line, raw in decoded_lines(path):
        if jsonl:
            if line is None:
                yield number, None, None, "not valid UTF-8"
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, None, None, f"not valid JSON ({exc.msg})"
                continue
            if not isinstance(record, dict):
                yield number, None, None, "not a JSON object"
                continue
            docid, text = pick(record, CORPUS_KEYS["doc_id"]), pick(record, CORPUS_KEYS["document"])
            title = record.get("title")
            if isinstance(title, str) and title.strip() and isinstance(text, str):
                text = f"{title.strip()} {text}"
        else:
            docid_bytes, _, text_bytes = raw.partition(b"\t")
            docid = docid_bytes.decode("utf-8", "surrogateescape")
            text = text_bytes.decode("utf-8", "surrogateescape")
        problems: list[str] = []
        docid = as_id(docid, "document id", problems)
        if docid is None:
            yield number, None, None, "; ".join(problems)
            continue
        text = as_text(text, "text", problems)
        yield number, docid, text, (f"corpus line {number}: " + "; ".join(problems)) if problems else None


def read_corpus(path: str | Path) -> tuple[dict[str, str], list[str]]:
    """Doc id → text of a whole corpus file (JSONL or TSV, as ``TrecPairs`` reads it: a title before the text; the
    first entry of a repeated id wins), held in memory, and one problem line per entry that cannot be used."""
    documents: dict[str, str] = {}
    problems: list[str] = []
    for number, docid, text, problem in _corpus_entries(Path(path)):
        if docid is None or problem:
            problems.append(problem if docid is not None else f"corpus line {number}: {problem}")
        elif docid not in documents:
            documents[docid] = text
    return documents, problems


def joined_chunks(lines: Callable[[], Iterable[TrecLine | RejectRow]], topics: Path, corpus: Path,
                  chunk_rows: int = DEFAULT_CHUNK_ROWS, workdir: Path | None = None) -> Iterator[list[Row]]:
    """Chunks of ``PairRow`` / ``RejectRow``, one per line of ``lines()`` (called twice: once to list the documents
    needed, once to pair), texts looked up in the topics and the corpus; a rejected line stays rejected."""
    if chunk_rows < 1:
        raise InputError(f"The chunk size must be at least 1 row, got {chunk_rows}.")
    return _joined(lines, topics, corpus, chunk_rows, workdir)


def _joined(lines: Callable[[], Iterable[TrecLine | RejectRow]], topics: Path, corpus: Path, chunk_rows: int,
            workdir: Path | None) -> Iterator[list[Row]]:
    texts = read_topics(topics)
    with tempfile.TemporaryDirectory(prefix="reranker-corpus-", dir=workdir) as folder:
        db = sqlite3.connect(Path(folder) / "documents.sqlite3", isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("CREATE TABLE docs (docid TEXT PRIMARY KEY, text TEXT, problem TEXT) WITHOUT ROWID")
            _collect_needed_docids(db, lines())
            unreadable = _fill_documents(db, corpus)
            yield from _pairs(db, lines(), texts, topics.name, corpus.name, chunk_rows, unreadable)
        finally:
            db.close()


def _collect_needed_docids(db: sqlite3.Connection, lines: Iterable[TrecLine | RejectRow]) -> None:
    """Every document id the lines name, in the lookup table (no text yet)."""
    docids = (line.doc_id for line in lines if not isinstance(line, RejectRow))
    for batch in batched(docids, 10000):
        db.execute("BEGIN")
        db.executemany("INSERT OR IGNORE INTO docs (docid) VALUES (?)", ((d,) for d in batch))
        db.execute("COMMIT")


def _fill_documents(db: sqlite3.Connection, corpus: Path) -> tuple[int, list[str]]:
    """Copy the texts of needed documents from the corpus (the first entry of a repeated id wins).
    Returns how many corpus lines could not be read at all (no document id), and the first three of them."""
    unreadable, examples = 0, []
    for batch in batched(_corpus_entries(corpus), 10000):
        rows = []
        for number, docid, text, problem in batch:
            if docid is None:
                unreadable += 1
                if len(examples) < 3:
                    examples.append(f"corpus line {number}: {problem}")
            else:
                rows.append((text, problem, docid))
        db.execute("BEGIN")
        db.executemany("UPDATE docs SET text = ?, problem = ? WHERE docid = ? AND text IS NULL AND problem IS NULL",
                       rows)
        db.execute("COMMIT")
    if unreadable:
        log.warning("%d corpus lines could not be read, e.g. %s", unreadable, "; ".join(examples))
    return unreadable, examples


def _pairs(db: sqlite3.Connection, lines: Iterable[TrecLine | RejectRow], topics: dict[str, str], topics_name: str,
           corpus_name: str, chunk_rows: int, unreadable: tuple[int, list[str]]) -> Iterator[list[Row]]:
    count, examples = unreadable
    noun = "1 corpus line" if count == 1 else f"{count} corpus lines"
    note = f" ({noun} could not be read, e.g. {examples[0]})" if count else ""
    for batch in batched(lines, chunk_rows):
        docids = list({line.doc_id for line in batch if not isinstance(line, RejectRow)})
        found: dict[str, tuple[str | None, str | None]] = {}
        for start in range(0, len(docids), 900):
            part = docids[start:start + 900]
            query = f"SELECT docid, text, problem FROM docs WHERE docid IN ({','.join('?' * len(part))})"
            found.update((d, (t, p)) for d, t, p in db.execute(query, part))
        rows: list[Row] = []
        for line in batch:
            if isinstance(line, RejectRow):
                rows.append(line)
                continue
            qid, docid, excerpt = line.query_id, line.doc_id, make_excerpt(line.line)
            text, problem = found.get(docid, (None, None))
            if qid not in topics:
                rows.append(RejectRow(line.row, f"query {qid} is not in the topics file {topics_name}", excerpt))
            elif problem:
                rows.append(RejectRow(line.row, f"document {docid} is unreadable in the corpus ({problem})", excerpt))
            elif text is None:
                rows.append(RejectRow(line.row, f"document {docid} is not in the corpus {corpus_name}{note}", excerpt))
            else:
                rows.append(PairRow(line.row, qid, topics[qid], docid, text))
        yield rows
