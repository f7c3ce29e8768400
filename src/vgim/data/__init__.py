"""Corpora (folders, CSV manifests, the synthetic espeak-ng corpus) and training batches."""
