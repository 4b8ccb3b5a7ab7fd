"""pyproject.toml's dependency lists are the requirements files' lists (those stay the install path `make` uses)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _requirements(name: str) -> list[str]:
    """The requirement lines of one file, without comments, options and ``-r`` includes, normalised."""
    lines = (line.split("#")[0].strip() for line in (ROOT / name).read_text(encoding="utf-8").splitlines())
    return [str(Requirement(line)) for line in lines if line and not line.startswith("-")]


@pytest.mark.parametrize("extra, name", [(None, "requirements-common.txt"), ("cpu", "requirements.txt"),
                                         ("gpu", "requirements-gpu.txt"), ("dev", "requirements-dev.txt"),
                                         ("space", "requirements-space.txt")])
def test_pyproject_lists_equal_the_requirements_files(extra, name):
    listed = PROJECT["dependencies"] if extra is None else PROJECT["optional-dependencies"][extra]
    assert [str(Requirement(r)) for r in listed] == _requirements(name)


def test_the_console_script_is_the_module_entry_point():
    assert PROJECT["scripts"] == {"reranker": "reranker.cli:command"}
    assert PROJECT["requires-python"] == ">=3.11"
