"""Supervised clip classification (methods.md §2): TSM, R(2+1)D, CNN-LSTM, X3D, Slow, ViViT."""
