"""Where a bake-off's data comes from: one entry point over the readers of ``reranker.files``, by kind."""

from __future__ import annotations

from reranker.errors import InputError
from reranker.files import beir_folder, hf_datasets, ir_datasets_source, search_responses
from reranker.files.test_collection import TestCollection

KINDS = {"beir": "a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)",
         "ir_datasets": "an ir_datasets id (e.g. beir/scifact/test)",
         "hf": "a Hugging Face dataset in the MTEB layout (hub id or local folder)",
         "search": "Elasticsearch / OpenSearch _search responses with TREC qrels"}


def load_collection(kind: str, source: str, *, split: str = "test", qrels: str | None = None,
                    topics: str | None = None, text_field: str | None = None, sample: int | None = None,
                    seed: int = 0) -> TestCollection:
    """The collection ``source`` of ``kind`` (one of ``KINDS``), sampled to ``sample`` measurable queries with
    ``seed`` (all of them when ``sample`` is None)."""
    if kind == "beir":
        collection = beir_folder.read_beir(source, split)
    elif kind == "ir_datasets":
        collection = ir_datasets_source.load(source)
    elif kind == "hf":
        collection = hf_datasets.load(source, split)
    elif kind == "search":
        if not qrels:
            raise InputError("Search responses carry no judgements: give the TREC qrels file too.")
        collection = search_responses.read_search_responses(source, qrels, topics=topics, text_field=text_field)
    else:
        raise InputError(f"Unknown data source {kind!r}: choose one of {', '.join(KINDS)}.")
    return collection.sample(sample, seed)
