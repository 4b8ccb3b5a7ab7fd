"""Reranker bake-offs: which reranker wins on *your* data, and does reranking help at all?

A test collection (``reranker.files``: BEIR folder, ir_datasets id, MTEB-layout dataset, search-engine
responses), a first stage (its own, or BM25), rerankers side by side (``contenders``, ``cross_encoder``,
``rerank_endpoint``, built from settings by ``variants``), run and timed (``run``), a leaderboard with the lift
over no rerank (``board``) and exports (``report``); ``pipeline.bakeoff`` does it all in one call.

Imports: ``storage``, ``scoring``, ``files``, ``ranking``, ``tuning``.
"""
