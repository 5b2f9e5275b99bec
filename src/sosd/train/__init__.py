"""Training: the loop (loop.py), what to optimise (strategies/), DDP (distributed.py).

Checkpoints are written and read by :mod:`sosd.checkpoint`, which sits below training and evaluation.
"""
