"""Trajectory clustering (methods.md §5, issue #18): dense trajectories, Fisher vectors. Work in
progress: the tracking and the encoding exist and are tested; the method is not registered yet
(no `method.py`), so no CLI command runs it."""
