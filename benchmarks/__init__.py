"""Benchmarks of optunapi against its peers: ``python benchmarks/compare.py`` (see compare.py)."""
