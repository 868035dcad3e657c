"""The MLflow pyfunc model of every registered actionops checkpoint, logged as code.

MLflow's models-from-code: `mlflow.pyfunc.log_model(python_model=<this file>, ...)` copies this
source file into the logged model and, on load, runs it; `set_model` hands MLflow the wrapper.
Nothing of the wrapper is pickled. Its `load_context` reads the `checkpoint` artifact with
`torch.load(weights_only=True)` (tensors and plain containers only) and rebuilds the module
through the model registry, from the actionops package logged beside it (`code_paths`).
"""

import mlflow

from actionops.models.checkpoint import CheckpointModel


class ActionopsCheckpointModel(CheckpointModel, mlflow.pyfunc.PythonModel):
    """`CheckpointModel` as an MLflow PythonModel (predict: dict of numpy arrays -> numpy)."""


mlflow.models.set_model(ActionopsCheckpointModel())
