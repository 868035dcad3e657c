"""Model builders and their registry: `create_model(name, **kw)`, `list_models()`.

Builders register themselves on import; `create_model` imports the family modules first, so
callers never import a family module by hand.
"""

from actionops.models.registry import create_model, list_models, model_spec, register_model

__all__ = ["create_model", "list_models", "model_spec", "register_model"]
