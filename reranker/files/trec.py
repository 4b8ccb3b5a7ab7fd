"""TREC files: topics, qrels and runs, read line by line with every unusable line reported.

- topics: TSV ``qid<TAB>text`` or JSONL (``_id``/``id``/``qid`` and ``text``/``query``);
- qrels: ``query_id iteration doc_id label`` per line;
- run: ``query_id Q0 doc_id rank score tag`` per line.

``qrels_rows`` and ``run_rows`` yield one ``QrelsLine`` / ``RunLine`` per usable line and a ``RejectRow`` (line
number, reason, excerpt) per unusable one; ``read_qrels`` and ``read_run`` load a whole file as the dicts
``ranx.Qrels.from_dict`` / ``ranx.Run.from_dict`` take and stop at the first unusable line. A qrels label is
kept as written: each caller checks it against the scale it needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from reranker.errors import InputError
from reranker.files.columns import TOPIC_KEYS, pick
from reranker.files.rows import RejectRow, as_id, as_text, decoded_lines, make_excerpt

QRELS_SHAPE = "qid 0 docid label"
RUN_SHAPE = "qid Q0 docid rank score tag"


@dataclass(frozen=True)
class QrelsLine:
    """One qrels line: which document of which query, the label as written, and the line itself."""

    row: int
    query_id: str
    doc_id: str
    label: str
    line: str


@dataclass(frozen=True)
class RunLine:
    """One run line: which document of which query, its score, and the line itself."""

    row: int
    query_id: str
    doc_id: str
    score: float
    line: str


def is_jsonl(path: Path) -> bool:
    """Whether ``path`` is named as JSON lines (``.jsonl``, ``.ndjson`` or ``.json``; ``.gz`` looked through)."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return bool(suffixes) and suffixes[-1] in (".jsonl", ".ndjson", ".json")


def read_topics(path: str | Path) -> dict[str, str]:
    """Query id → text from a TSV (``qid<TAB>text``) or JSONL (``_id``/``id``/``qid`` and ``text``/``query``)
    topics file. Raises ``InputError`` naming the line of any unreadable or duplicated topic."""
    path = Path(path)
    topics: dict[str, str] = {}
    for number, line, _ in decoded_lines(path):
        where = f"{path.name} line {number}"
        if line is None:
            raise InputError(f"{where} is not valid UTF-8; convert the topics file to UTF-8.")
        if is_jsonl(path):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where} is not valid JSON ({exc.msg}).") from exc
            if not isinstance(record, dict):
                raise InputError(f"{where} is not a JSON object.")
            qid, text = pick(record, TOPIC_KEYS["query_id"]), pick(record, TOPIC_KEYS["query"])
        else:
            qid, _, text = line.partition("\t")
        problems: list[str] = []
        qid = as_id(qid, "query id", problems)
        text = as_text(text, "query text", problems)
        if problems:
            raise InputError(f"{where}: {'; '.join(problems)} (a topic is `qid<TAB>text` or a JSON object).")
        if qid in topics and topics[qid] != text:
            raise InputError(f"{where}: query {qid} appears twice with different texts.")
        topics[qid] = text
    if not topics:
        raise InputError(f"{path.name} holds no topics.")
    return topics


def _fields(line: str | None, expected: int, shape: str) -> list[str] | str:
    """The whitespace-separated fields of ``line``, or the reason it is not a line of ``shape``."""
    if line is None:
        return "the line is not valid UTF-8"
    fields = line.split()
    if len(fields) != expected:
        return f"a line has {expected} fields ({shape}), this one has {len(fields)}"
    return fields


def _file_lines(path: Path) -> Iterator[tuple[int, str | None, str]]:
    """(line number, text or None when not UTF-8, the line for an excerpt) per non-blank line of a file."""
    for number, line, raw in decoded_lines(path):
        yield number, line, raw.decode("utf-8", "surrogateescape")


def text_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """The same for text already decoded (line numbers count blank lines)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line, line


def qrels_lines(lines: Iterable[tuple[int, str | None, str]]) -> Iterator[QrelsLine | RejectRow]:
    """A ``QrelsLine`` per qrels line of ``lines`` (as ``text_lines`` yields them), a ``RejectRow`` per bad one."""
    for number, line, raw in lines:
        fields = _fields(line, 4, QRELS_SHAPE)
        if isinstance(fields, str):
            yield RejectRow(number, fields, make_excerpt(raw))
            continue
        qid, _, docid, label = fields
        yield QrelsLine(number, qid, docid, label, line)


def qrels_rows(path: str | Path) -> Iterator[QrelsLine | RejectRow]:
    """The lines of a qrels file (``.gz`` read as it is decompressed), usable or rejected, in file order."""
    return qrels_lines(_file_lines(Path(path)))


def run_rows(path: str | Path) -> Iterator[RunLine | RejectRow]:
    """The lines of a run file (``.gz`` read as it is decompressed), usable or rejected, in file order."""
    for number, line, raw in _file_lines(Path(path)):
        fields = _fields(line, 6, RUN_SHAPE)
        if isinstance(fields, str):
            yield RejectRow(number, fields, make_excerpt(raw))
            continue
        qid, _, docid, rank, score, _ = fields
        try:
            int(rank)
            value = float(score)
        except ValueError:
            yield RejectRow(number, "the rank or score is not a number", make_excerpt(raw))
            continue
        yield RunLine(number, qid, docid, value, line)


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """TREC qrels ``qid 0 docid label`` as ``{qid: {docid: label}}``; ``InputError`` names a malformed line."""

    def label(item: QrelsLine) -> int:
        try:
            return int(item.label)
        except ValueError:
            raise ValueError(f"the label {item.label!r} is not a whole number") from None

    return _load(Path(path), qrels_rows(path), label, "judgements")


def read_run(path: str | Path) -> dict[str, dict[str, float]]:
    """A TREC run ``qid Q0 docid rank score tag`` as ``{qid: {docid: score}}``; ``InputError`` on a bad line."""
    return _load(Path(path), run_rows(path), lambda item: item.score, "run lines")


def _load(path: Path, lines: Iterable[QrelsLine | RunLine | RejectRow], value: Callable, what: str) -> dict:
    """``{qid: {docid: value(line)}}`` of every line; ``InputError`` at the first unusable one (``value`` raises
    ``ValueError`` for a line it cannot use) or when there is none."""
    loaded: dict[str, dict] = {}
    for item in lines:
        try:
            if isinstance(item, RejectRow):
                raise ValueError(item.reason)
            loaded.setdefault(item.query_id, {})[item.doc_id] = value(item)
        except ValueError as exc:
            raise InputError(f"{path.name} line {item.row}: {exc}.") from None
    if not loaded:
        raise InputError(f"{path.name} holds no {what}.")
    return loaded
