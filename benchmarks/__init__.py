"""Benchmarks of the VSKD pipeline (``python -m benchmarks.run``; see README, "Benchmarks")."""
