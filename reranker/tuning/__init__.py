"""Tuning instructions across many queries: sweeps (``sweep``), a leaderboard with confidence intervals and
significance (``leaderboard``), calibration and thresholds (``calibration``), one-file reports (``report``).

Imports: ``storage``, ``scoring``, ``files``, ``ranking``.
"""
