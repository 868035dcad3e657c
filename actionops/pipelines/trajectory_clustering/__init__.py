"""Trajectory clustering and video pretraining (methods.md §5, issue #18): dense trajectories,
Fisher vectors, k-means video clusters, and a 3D ResNet-18 pretrained on them without labels.
A registered method (`method.py`); see README "Trajectory clustering and video pretraining"."""
