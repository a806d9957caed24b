"""HTTP service and web page over saved models (``chuchun serve``; needs the ``serve`` extra).

:func:`create_app` builds the ASGI application from a :class:`ServeConfig`; the command line
runs it on uvicorn. See ``docs/serve.md``.
"""

from chuchun.serve._registry import ModelRegistry, ServedModel, read_labels
from chuchun.serve.app import ServeConfig, app_from_env, create_app

__all__ = ["ModelRegistry", "ServeConfig", "ServedModel", "app_from_env", "create_app",
           "read_labels"]
