"""Embedding analysis and one-action anomaly detection (methods.md §3)."""
