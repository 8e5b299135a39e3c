"""Marks docs/ as a package so that its conftest.py (Sybil) and tests/conftest.py have distinct module names."""
