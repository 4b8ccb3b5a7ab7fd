"""Tools for tests and benchmarks: a tiny random-weight Qwen3 reranker with the real vocabulary, local vLLM
servers.

Imports: ``scoring``.
"""
