"""Shared vocabulary with no I/O: units, exact decimals, error categories (a leaf package)."""
