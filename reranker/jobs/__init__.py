"""Long-running work over files: the batch command's resumable job.

Imports: ``storage``, ``scoring``, ``files``, ``ranking``.
"""
