"""Tuning instructions across many queries: sweeps, a leaderboard with significance, calibration, reports."""
