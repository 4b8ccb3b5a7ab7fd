"""Speed benchmark of every scoring path on the same prompts (``python -m reranker.bench``; docs/benchmarks.md)."""
