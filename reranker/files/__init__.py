"""Reading and writing the files people bring and take away: documents, pair files, judgement files, CSV tables.

Imports: ``storage``, ``scoring``.
"""
