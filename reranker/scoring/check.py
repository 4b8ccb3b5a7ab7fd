"""Known-answer check: does the loaded model separate clearly relevant from clearly irrelevant documents?

A wrongly loaded model or template is the most common way rerankers fail silently: scores come
out, but they mean nothing. Real Qwen3-Reranker checkpoints put every relevant canary above every
irrelevant one by a wide margin; a random or mis-wired model does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from reranker.scoring.canaries import CANARIES
from reranker.scoring.engine import Reranker


@dataclass(frozen=True)
class CheckReport:
    """Scores of the canary pairs and the verdict."""

    relevant: list[float]
    irrelevant: list[float]

    @property
    def margin(self) -> float:
        """Lowest relevant score minus highest irrelevant score."""
        return min(self.relevant) - max(self.irrelevant)

    @property
    def passed(self) -> bool:
        """Every relevant canary scores above 0.5, every irrelevant one below 0.5."""
        return min(self.relevant) > 0.5 > max(self.irrelevant)

    def summary(self) -> str:
        verdict = "PASS: the model separates relevant from irrelevant documents" if self.passed else (
            "FAIL: the model does NOT separate relevant from irrelevant documents; its scores are not "
            "trustworthy (wrong model, broken weights, or a wrong prompt template)"
        )
        lines = [verdict]
        for (query, _, _), rel, irr in zip(CANARIES, self.relevant, self.irrelevant):
            lines.append(f"  {query[:40]:<40}  relevant {rel:.4f}  irrelevant {irr:.4f}")
        lines.append(f"  margin (lowest relevant - highest irrelevant): {self.margin:+.4f}")
        return "\n".join(lines)


def run_check(reranker: Reranker) -> CheckReport:
    """Score the canary pairs (default instruction) and report."""
    pairs = [(q, doc) for q, rel, irr in CANARIES for doc in (rel, irr)]
    scores = [j.score for j in reranker.score(pairs)]
    return CheckReport(relevant=scores[0::2], irrelevant=scores[1::2])
