"""Long-running work over files: the batch command's resumable job, its shards and their merge.

``job`` (what a job is and its identity), ``job_file`` (its SQLite state), ``runner`` (scoring it chunk by chunk),
``chunk_scoring`` (one chunk), ``outputs`` (the files it writes), ``locations`` (paths and object-storage URLs),
``shards``, ``manifest`` and ``merge`` (a job cut into shards and put back together).

Imports: ``storage``, ``scoring``, ``files``, ``ranking``.
"""

from reranker.jobs.job import BatchJob, BatchSummary
from reranker.jobs.runner import run_batch

__all__ = ["BatchJob", "BatchSummary", "run_batch"]
