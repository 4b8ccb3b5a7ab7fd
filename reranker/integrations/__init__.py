"""Running the scorer inside other engines (Ray). Each module imports its engine lazily: ``pip install ".[ray]"``.

Imports: ``scoring``, ``files``, ``jobs``.
"""
