"""Fusion models: classical baselines (:mod:`.baselines`) and, per paper, the networks."""
