"""Query -> prompt -> engine: the exact Qwen3-Reranker prompt, the backends that score it (vLLM, transformers,
remote vLLM servers), the ``Reranker`` engine with its cache, the start-up check and the model holder.

Imports: ``storage``.
"""
