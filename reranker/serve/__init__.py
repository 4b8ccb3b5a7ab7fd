"""The HTTP API (Cohere-compatible rerank and the project's own routes) on FastAPI.

Imports: every folder below it (not ``ui``).
"""
