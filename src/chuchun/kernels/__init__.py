"""Compiled loops (numba) and their plain-NumPy twins. Nothing else lives here."""
