"""Typed errors of the engine. Only the edges (CLI, UI, HTTP) turn them into messages for people."""


class RerankerError(Exception):
    """Base of every error the engine raises on purpose; its text is meant for the user."""


class InputError(RerankerError, ValueError):
    """The caller's input cannot be scored as given; the message says what to fix."""


class ModelError(RerankerError):
    """The model could not be loaded, or is not a Qwen3 reranker."""


class BackendUnavailable(RerankerError):
    """The requested backend cannot run here (not installed, or no suitable device)."""


class Cancelled(RerankerError):
    """The caller stopped a run before it finished (its ``cancelled`` check said so); nothing after it was scored."""
