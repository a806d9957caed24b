"""The ``chuchun`` command line: a thin front-end over the Python API.

Commands: ``demo``, ``fit``, ``recommend``, ``explain``, ``similar``, ``evaluate``, ``tune``,
``info``, ``models``.

Exit status
-----------
0
    success;
1
    an error in the data, the configuration (parameters, model names) or an artifact, or a file
    that cannot be read or written: one line ``chuchun: error: ...`` on stderr;
2
    a usage error (unknown option, missing argument), reported by click with the usage line;
3
    an unexpected internal error (a bug): one line on stderr; ``--debug`` shows the traceback.

Logging goes to stderr (``-v`` for progress messages, ``--debug`` for everything); the library
itself installs no handlers. Progress bars are on unless ``--no-progress``; when stderr is not a
terminal they become one plain line every ``--log-every`` seconds.

Error messages name the command-line flags (``--unknown fallback``), not the Python keywords
(``unknown='fallback'``) that the library's messages use.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
import traceback
import warnings
from typing import Any

import click

from chuchun._exceptions import ChuchunError
from chuchun._progress import set_progress
from chuchun.cli.commands import (
    evaluate_command,
    fit_command,
    info_command,
    models_command,
    recommend_command,
)
from chuchun.cli.demo import demo_command
from chuchun.cli.query import explain_command, similar_command
from chuchun.cli.tune import tune_command

__all__ = ["EXIT_ERROR", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USAGE", "cli", "cli_wording", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

_state: dict[str, bool] = {"debug": False}


def _version() -> str:
    from chuchun import __version__

    return __version__


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit status: 0 success; 1 error in the data, configuration or an artifact "
    "(one line on stderr); 2 usage error; 3 internal error (--debug shows the traceback).",
)
@click.version_option(_version(), prog_name="chuchun")
@click.option("-v", "--verbose", is_flag=True, help="Log progress messages to stderr.")
@click.option("--debug", is_flag=True, help="Debug logging, and tracebacks on errors.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--log-every", type=click.FloatRange(min=0), default=10.0, show_default=True,
              metavar="SECONDS",
              help="When stderr is not a terminal, one progress line per this many seconds.")
def cli(verbose: bool, debug: bool, no_progress: bool, log_every: float) -> None:
    """chuchun: train, evaluate, save and query recommender models."""
    _state["debug"] = debug
    level = logging.DEBUG if debug else (logging.INFO if verbose else logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("chuchun")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    set_progress(not no_progress, interval=log_every)
    warnings.showwarning = _show_warning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Warnings as one ``chuchun: warning: ...`` line (the CLI user has no use for the source
    line that the default format adds)."""
    text = " ".join(str(message).split())
    click.echo(f"chuchun: warning: {text}", err=True)


for _command in (demo_command, fit_command, recommend_command, explain_command, similar_command,
                 evaluate_command, tune_command, info_command, models_command):
    cli.add_command(_command)

cli.add_command(importlib.import_module("chuchun.cli.serve").serve_command)

if importlib.util.find_spec("chuchun.cli.rules") is not None:
    from chuchun.cli.rules import rules_command  # type: ignore[attr-defined]

    cli.add_command(rules_command)

from chuchun.cli.report import report_command  # noqa: E402

cli.add_command(report_command)

from chuchun.cli.spark import install as _install_spark  # noqa: E402

_install_spark(cli)  # --engine spark on fit and evaluate


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``chuchun`` script; exits with the documented status."""
    _state["debug"] = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="chuchun", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.Abort:
        click.echo("chuchun: aborted", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        click.echo(f"chuchun: error: {exc.format_message()}", err=True)
        sys.exit(EXIT_ERROR)
    except (ChuchunError, OSError) as exc:
        _report(exc, EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("chuchun: interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # a bug: say so in one line, traceback with --debug
        _report(exc, EXIT_INTERNAL, internal=True)
    sys.exit(EXIT_OK)


#: Python keyword arguments named in library messages -> the CLI flags that set them
_FLAGS = {
    "unknown": "--unknown", "sep": "--sep", "duplicates": "--duplicates",
    "id_type": "--id-type", "rating_scale": "--rating-scale", "names": "--names",
    "fmt": "--data-format", "user_col": "--user-col", "item_col": "--item-col",
    "rating_col": "--rating-col", "timestamp_col": "--timestamp-col", "n_reasons": "--n-reasons",
    "item_features": "--item-features", "user_features": "--user-features",
}
_KEYWORD = re.compile(
    r"\b(" + "|".join(_FLAGS) + r")=('[^']*'|\"[^\"]*\"|\[[^\]]*\]|[^\s,;)]+)"
)


def cli_wording(message: str) -> str:
    """Say ``--unknown fallback`` where the library says ``unknown='fallback'``, and
    ``--no-header`` for ``header=False``."""
    message = message.replace("header=False", "--no-header")
    # whole Python calls first: the flag that supplies what they pass
    message = re.sub(r"fit\(interactions, (item|user)_features=\w+\.from_pandas\(\.\.\.\)\)",
                     r"--\1-features FILE", message)
    message = message.replace("pass ratings=[[...], ...] parallel to the histories",
                              "give each history item as ID=RATING (--history 50=5)")

    def flag(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        if value[:1] in "'\"" and value[-1:] == value[:1]:
            value = value[1:-1]
            value = f"'{value}'" if not value or any(c in value for c in " \t;|\\") else value
        elif value.startswith("["):
            value = "A,B,..."
        return f"{_FLAGS[name]} {value}"

    message = _KEYWORD.sub(flag, message)
    # "--unknown fallback or 'empty'": the alternatives of a flag lose their quotes too
    return re.sub(r"(--[a-z-]+ [\w-]+)((?:(?:, | or )'[\w-]+')+)",
                  lambda m: m.group(1) + re.sub(r"'([\w-]+)'", r"\1", m.group(2)), message)


def _report(exc: BaseException, code: int, *, internal: bool = False) -> None:
    if _state["debug"]:
        traceback.print_exception(exc, file=sys.stderr)
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, ChuchunError):
        message = cli_wording(message)
    if internal:
        message = f"internal error ({type(exc).__name__}): {message}"
        if not _state["debug"]:
            message += " (run with --debug for the traceback)"
    elif isinstance(exc, OSError) and not isinstance(exc, ChuchunError):
        message = f"{exc.strerror or type(exc).__name__}: {exc.filename or message}"
    click.echo(f"chuchun: error: {message}", err=True)
    sys.exit(code)
