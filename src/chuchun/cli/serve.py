"""``chuchun serve``: the HTTP service and web page over saved models (the ``serve`` extra)."""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import tempfile
from types import FrameType
from typing import Any

import click

from chuchun._exceptions import ConfigError

__all__ = ["http_protocol", "serve_command"]


def _model_names(paths: tuple[str, ...], names: tuple[str, ...]) -> dict[str, str]:
    if names and len(names) != len(paths):
        raise ConfigError(
            f"--name must be given once per model path: {len(paths)} paths but "
            f"{len(names)} names"
        )
    out: dict[str, str] = {}
    for j, path in enumerate(paths):
        base = os.path.basename(os.path.normpath(path))
        name = names[j] if names else (base[:-4] if base.lower().endswith(".zip") else base)
        if name in out:
            raise ConfigError(f"two models are named {name!r}; give each one --name")
        if not name or "/" in name:
            raise ConfigError(f"invalid model name {name!r}")
        out[name] = os.path.abspath(path)
    return out


def http_protocol() -> str:
    """uvicorn's ``http`` setting: its httptools protocol writing each small response with one
    system call (:mod:`chuchun.serve._wire`) when httptools is installed, else uvicorn's
    choice."""
    if importlib.util.find_spec("httptools") is None:
        return "auto"
    return "chuchun.serve._wire:HttpToolsProtocol"


def _terminated(signum: int, frame: FrameType | None) -> None:
    logging.getLogger("chuchun.serve").info("stopped (signal %d)", signum)


@click.command("serve")
@click.argument("model_paths", nargs=-1, required=True, metavar="MODEL_PATH...")
@click.option("--name", "names", multiple=True,
              help="Name of each model in URLs, once per path in order (default: file name).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (each loads every model).")
@click.option("--labels", "labels_path", default=None, metavar="FILE",
              help="CSV with item id and label (title) columns, added to labels the "
              "artifacts carry.")
@click.option("--index", type=click.Choice(["exact", "ann"]), default="exact", show_default=True,
              help="Top-k search of factor models: exact, or an approximate HNSW index.")
@click.option("--ann-m", default=16, show_default=True, type=click.IntRange(2, 256),
              help="HNSW graph degree (--index ann).")
@click.option("--ann-ef-construction", default=200, show_default=True,
              type=click.IntRange(1, 10_000), help="HNSW build candidate list (--index ann).")
@click.option("--ann-ef-search", default=400, show_default=True, type=click.IntRange(1, 10_000),
              help="HNSW search candidate list (--index ann).")
@click.option("--admin-token-file", default=None, metavar="FILE",
              help="File holding the bearer token of /v1/admin/* (else $CHUCHUN_ADMIN_TOKEN; "
              "with neither the admin routes are off).")
@click.option("--max-body-bytes", default=1 << 20, show_default=True,
              type=click.IntRange(1, 1 << 30), help="Larger request bodies get 413.")
@click.option("--graceful-timeout", default=10.0, show_default=True, type=float,
              help="Seconds requests in flight get to finish after SIGTERM.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True, help="Service log level.")
@click.option("--no-access-log", is_flag=True, help="Do not log one JSON line per request.")
@click.option("--no-fast-path", is_flag=True,
              help="Answer GET .../recommend through the general route too (same answers, "
              "several times the CPU per request; for comparison and debugging).")
def serve_command(
    model_paths: tuple[str, ...], names: tuple[str, ...], host: str, port: int, workers: int,
    labels_path: str | None, index: str, ann_m: int, ann_ef_construction: int,
    ann_ef_search: int, admin_token_file: str | None, max_body_bytes: int,
    graceful_timeout: float, log_level: str, no_access_log: bool, no_fast_path: bool,
) -> None:
    """Serve saved models over HTTP, with a web page at / to explore them.

    Models are read-only artifacts named on the command line; SIGHUP (or POST
    /v1/admin/reload) loads them again from the same paths and swaps them in; SIGTERM lets
    requests in flight finish, then exits. See docs/serve.md.
    """
    for module in ("fastapi", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"chuchun serve needs {module}: install the serve extra, "
                "pip install 'chuchun[serve]'"
            )
    import uvicorn

    from chuchun.io import read_manifest
    from chuchun.serve._balance import ENV_BALANCE, create_balance_file
    from chuchun.serve.app import ENV_CONFIG, ServeConfig, create_app, limit_native_threads
    from chuchun.serve.logs import configure_logging

    config = ServeConfig(
        models=_model_names(model_paths, names),
        labels_path=os.path.abspath(labels_path) if labels_path else None,
        index=index,
        ann_options={"M": ann_m, "ef_construction": ann_ef_construction,
                     "ef_search": ann_ef_search},
        admin_token_file=os.path.abspath(admin_token_file) if admin_token_file else None,
        max_body_bytes=max_body_bytes,
        fast_path=not no_fast_path,
        freeze_heap=True,
    )
    config.admin_token()  # an unreadable token file is an error now, not at the first reload
    configure_logging(log_level, access=not no_access_log)
    limit_native_threads()
    options: dict[str, Any] = {
        "host": host, "port": port, "log_config": None, "access_log": False,
        "timeout_graceful_shutdown": graceful_timeout, "server_header": False,
        "http": http_protocol(),
    }
    # uvicorn re-raises SIGTERM once it has shut down gracefully; with this handler in place
    # the re-raise ends the command normally (exit status 0) instead of killing the process
    signal.signal(signal.SIGTERM, _terminated)
    if workers == 1:
        app = create_app(config)
        uvicorn.run(app, **options)
        return
    for path in config.models.values():
        read_manifest(path)  # a missing or foreign artifact fails here, before any worker starts
    os.environ[ENV_CONFIG] = config.to_env()
    os.environ["CHUCHUN_SERVE_LOG_LEVEL"] = log_level
    os.environ["CHUCHUN_SERVE_ACCESS_LOG"] = "0" if no_access_log else "1"
    with tempfile.TemporaryDirectory(prefix="chuchun-serve-") as tmp:
        # the workers' shared connection counts (chuchun.serve._balance)
        balance = os.path.join(tmp, "connections")
        create_balance_file(balance, workers)
        os.environ[ENV_BALANCE] = balance
        uvicorn.run("chuchun.serve.app:app_from_env", factory=True, workers=workers, **options)
