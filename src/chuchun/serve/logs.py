"""Logging of a service process: one line per record on stderr; access records are JSON."""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_logging"]


def configure_logging(level: str = "info", *, access: bool = True) -> None:
    """Send ``chuchun`` logs to stderr; ``chuchun.serve.access`` lines are bare JSON objects."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("chuchun")
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    root.propagate = False
    server_log = logging.getLogger("uvicorn.error")  # "listening on ...", shutdown messages
    server_log.handlers[:] = [handler]
    server_log.setLevel(numeric)
    server_log.propagate = False
    access_log = logging.getLogger("chuchun.serve.access")
    access_handler = logging.StreamHandler(sys.stderr)
    access_handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.handlers[:] = [access_handler]
    access_log.setLevel(logging.INFO if access else logging.WARNING)
    access_log.propagate = False
