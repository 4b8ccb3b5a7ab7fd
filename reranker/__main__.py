"""``python -m reranker``: see reranker/cli/__init__.py."""

import sys

from reranker.cli import command

if __name__ == "__main__":  # vLLM starts its workers by spawn: keep this guard
    sys.exit(command())
