"""Individual clustering (method 1): every person in every window gets an activity cluster.

Stages (each one CLI command and one function in `stages.py`):
    index -> flow -> autoencoder frame -> autoencoder flow -> clustering -> predict -> evaluate
"""
