"""The SQLite file and what lives in it: the score cache, instruction presets and people's judgements.

Imports: ``reranker.errors`` only.
"""
