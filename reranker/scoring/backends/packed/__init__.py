"""The fast backend, in the shape of gpt-fast: ``model.py`` (the weights and one forward pass), ``ops.py`` (each
operation as a torch reference and a fused GPU kernel, chosen at load), ``packing.py`` (packing and head grouping,
pure functions) and ``backend.py`` (the ``Backend``: loading, device queueing)."""
