"""What a ranking means: inspection runs, metrics, A/B comparison, multi-query evaluation, exports.
Pure functions over scores; the scoring itself is ``scoring``'s.

Imports: ``storage``, ``scoring``, ``files``.
"""
