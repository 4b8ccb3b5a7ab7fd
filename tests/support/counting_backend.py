"""A real backend wrapped to count the prompts it scores, so tests can prove cached pairs are not recomputed."""

from __future__ import annotations

from reranker.scoring.backends.base import Backend


class CountingBackend(Backend):
    """Counts the prompts sent to ``backend``; with ``fail=True`` any call fails the test."""

    def __init__(self, backend, fail: bool = False):
        self.backend, self.fail, self.prompts = backend, fail, 0
        self.name, self.device, self.precision = backend.name, backend.device, backend.precision

    def score_logodds(self, prompts):
        if self.fail:
            raise AssertionError("the model was called for pairs that are all cached")
        self.prompts += len(prompts)
        return self.backend.score_logodds(prompts)
