"""actionops: a Ray-distributed MLOps platform for spatio-temporal action recognition."""

__version__ = "0.1.0"
