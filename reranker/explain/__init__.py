"""Why a document got its score: sentence, query-word and instruction-clause effects, computed through the
same scoring path as the ranking (``explanation``), on texts split by ``sentences``; exports in ``export``.

Imports: ``errors``, ``storage``, ``scoring``, ``files``, ``ranking``.
"""
