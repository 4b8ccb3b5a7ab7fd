"""A small test collection (five documents, four queries, binary qrels) and writers of it in the readers' formats."""

from __future__ import annotations

import gzip
import json

CORPUS = [("d1", "Pandas", "The giant panda is a bear native to China."),
          ("d2", "", "Pandas is a Python library for data frames."),
          ("d3", "Bears", "Bears are large mammals; the panda is one."),
          ("d4", "Bamboo", "Bamboo is the main food of the giant panda."),
          ("d5", "", "Koalas eat eucalyptus leaves.")]
QUERIES = [("q1", "what do giant pandas eat"), ("q2", "python data frame library"), ("q3", "koala food"),
           ("q4", "unjudged query")]
QRELS = [("q1", "d4", 1), ("q1", "d1", 1), ("q1", "d2", 0), ("q2", "d2", 1), ("q3", "d5", 1), ("q3", "d9", 1)]


def write_beir(folder, *, gz=False):
    """The collection as a BEIR folder (corpus, queries, qrels/test.tsv); ``gz``: the corpus gzipped."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qrels").mkdir(exist_ok=True)
    corpus = "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in CORPUS)
    if gz:
        with gzip.open(folder / "corpus.jsonl.gz", "wt", encoding="utf-8") as handle:
            handle.write(corpus)
    else:
        (folder / "corpus.jsonl").write_text(corpus, encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES),
                                          encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{s}\n" for q, d, s in QRELS), encoding="utf-8")
    return folder


def register_ir_dataset(tmp_path, name):
    """A dataset made of ir_datasets' own classes over local files, registered under ``name``."""
    import ir_datasets
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import TrecQrels, TrecScoredDocs, TsvDocs, TsvQueries
    from ir_datasets.util import LocalDownload

    (tmp_path / "docs.tsv").write_text("".join(f"{i}\t{(t + ' ' + x).strip()}\n" for i, t, x in CORPUS))
    (tmp_path / "queries.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in QUERIES))
    (tmp_path / "qrels.txt").write_text("".join(f"{q} 0 {d} {s + 1}\n" for q, d, s in QRELS))  # graded 1..2
    (tmp_path / "run.txt").write_text("q1 Q0 d1 1 7.5 bm25\nq1 Q0 d3 2 3.0 bm25\nq2 Q0 d2 1 2.0 bm25\n"
                                      "q2 Q0 d9 2 1.0 bm25\n")
    dataset = Dataset(TsvDocs(LocalDownload(tmp_path / "docs.tsv")),
                      TsvQueries(LocalDownload(tmp_path / "queries.tsv")),
                      TrecQrels(LocalDownload(tmp_path / "qrels.txt"), {1: "not", 2: "partly", 3: "relevant"}),
                      TrecScoredDocs(LocalDownload(tmp_path / "run.txt")))
    if name not in ir_datasets.registry:
        ir_datasets.registry.register(name, dataset)
    else:
        ir_datasets.registry._registered[name] = dataset
    return dataset


def search_hit(doc_id, score, text, title=None):
    """One OpenSearch hit of the docs index."""
    source = {"text": text} if title is None else {"text": text, "title": title}
    return {"_index": "docs", "_id": doc_id, "_score": score, "_source": source}
