"""The Hugging Face Space's front matter (README.md) builds: its Python satisfies every requirement."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must start with the Space's front matter"
    return yaml.safe_load(text.split("---\n", 2)[1])


def requirement_names(file: Path) -> list[str]:
    """The distributions ``file`` installs (following ``-r``), for this machine's markers."""
    names = []
    for line in file.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith(("#", "--")):
            continue
        if line.startswith("-r "):
            names += requirement_names(file.parent / line[3:].strip())
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            names.append(requirement.name)
    return names


def test_python_version_satisfies_every_requirements_requires_python():
    meta = front_matter()
    python = str(meta["python_version"])
    names = requirement_names(ROOT / "requirements.txt")
    assert {"gradio", "pandas", "numpy", "scipy"} <= set(names)
    refused = {}
    for name in names:
        needs = importlib.metadata.metadata(name).get("Requires-Python")
        if needs and not SpecifierSet(needs).contains(python):
            refused[name] = needs
    assert not refused, f"python_version {python} is refused by {refused}"


def test_front_matter_describes_the_space():
    meta = front_matter()
    assert meta["app_file"] == "app.py" and meta["hf_oauth"] is True
    assert meta["models"] == [f"Qwen/Qwen3-Reranker-{size}" for size in ("0.6B", "4B", "8B")]
    assert 0 < len(meta["short_description"]) <= 60 and meta["suggested_hardware"]
    assert meta["sdk_version"] == importlib.metadata.version("gradio")
