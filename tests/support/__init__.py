"""Helpers the test modules share, so that no test module imports another."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
