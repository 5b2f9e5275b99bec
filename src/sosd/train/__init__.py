"""Training: the loop (loop.py), what to optimise (strategies/), checkpoints (checkpoint.py)."""
