"""The run header's HTML (no server): the self-check's three states, the instruction's name, escaping."""

from __future__ import annotations

from reranker.scoring.check import CheckReport
from reranker.view import run_header

XSS = "<img src=x onerror=alert(1)>"


def header(check, preset="Web search (default)", instruction="Given a web search query"):
    return run_header.render(model=XSS, backend="transformers", device="cpu", precision="bfloat16", check=check,
                             instruction=instruction, preset=preset, max_length=8192,
                             when="2026-12-05T08:00:00+00:00", wall_s=1.234, action="40 documents ranked")


def test_a_passed_check_is_green_a_failed_one_red_with_its_scores():
    passed = header(CheckReport(relevant=[0.9, 0.95, 0.99], irrelevant=[0.01, 0.02, 0.2]))
    assert "rr-check-pass" in passed and "self-check PASS · margin +0.700" in passed
    assert "rr-runhead-fail" not in passed and "rr-check-fail" not in passed
    failed = header(CheckReport(relevant=[0.45, 0.45, 0.47], irrelevant=[0.44, 0.44, 0.49]))
    assert 'class="rr-runhead rr-runhead-fail"' in failed and 'role="alert"' in failed
    assert "Self-check FAILED" in failed and "not trustworthy" in failed
    assert "What is the capital of France?: relevant 0.450, irrelevant 0.440" in failed and "margin -0.040" in failed
    broken = header("CUDA out of memory")
    assert "rr-runhead-fail" in broken and "self-check could not run: CUDA out of memory" in broken
    assert "self-check: not run yet" in header(None)


def test_the_header_names_the_instruction_the_model_and_the_whole_action():
    html = header(None, preset=None, instruction=XSS)
    assert 'title="&lt;img src=x onerror=alert(1)&gt;">edited</span>' in html
    assert "<b>40 documents ranked</b> in 1.23 s" in html and "(whole action)" in html
    assert "transformers on cpu, bfloat16" in html and "max length 8,192" in html
    assert "2026-12-05 08:00:00 UTC" in html and "<img" not in html
    assert ">Web search (default)</span>" in header(None)
    assert "rr-stale-note" in html and " hidden>" in html  # shown by the page's script once an input changes
