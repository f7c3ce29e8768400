"""Reproducible studies built from the library (the thesis experiment, ...)."""
