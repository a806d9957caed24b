"""Pieces shared by the CLI commands: data options, ``--param`` parsing, table printing."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from chuchun._exceptions import ConfigError, DataError
from chuchun.data.interactions import Interactions
from chuchun.models._base import Recommender, get_model_class

__all__ = ["build_model", "data_options", "format_table", "load_data", "parse_params"]


def data_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--data`` and the options that say how to read it."""
    options = [
        click.option(
            "--data", "data_path", required=True, metavar="FILE|DIR|NAME",
            help="Interactions file (.csv, .tsv, .parquet, .csv.gz, ...), a MovieLens "
            "directory, or a bundled/cached data set name such as ml-latest-small.",
        ),
        click.option("--user-col", default="user", show_default=True,
                     help="User id column of a file."),
        click.option("--item-col", default="item", show_default=True,
                     help="Item id column of a file."),
        click.option("--rating-col", default=None,
                     help="Rating/weight column (default: 'rating' if present)."),
        click.option("--timestamp-col", default=None,
                     help="Timestamp column (default: 'timestamp' if present)."),
        click.option("--implicit", is_flag=True,
                     help="Ignore ratings: every interaction counts 1."),
        click.option("--sep", default=None, help="Field separator of text files."),
        click.option("--rating-scale", type=(float, float), default=None,
                     metavar="LOW HIGH",
                     help="Declared rating range; ratings outside it are an error."),
        click.option(
            "--duplicates", type=click.Choice(["error", "first", "last", "mean", "sum"]),
            default="error", show_default=True, help="Policy for repeated (user, item) pairs.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def load_data(
    data_path: str,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = None,
    timestamp_col: str | None = None,
    implicit: bool = False,
    sep: str | None = None,
    duplicates: str = "error",
    rating_scale: tuple[float, float] | None = None,
) -> Interactions:
    """Read ``--data``: a file, a MovieLens directory, or a data set name."""
    from chuchun.datasets import MOVIELENS, load_dataset, load_interactions, load_movielens

    path = Path(data_path)
    if path.is_dir():
        data = load_movielens(path).ratings
    elif not path.exists() and data_path in MOVIELENS:
        data = load_dataset(data_path).ratings
    else:
        data = load_interactions(
            path,
            user_col=user_col,
            item_col=item_col,
            rating_col=None if implicit else (rating_col or "auto"),
            timestamp_col=timestamp_col or "auto",
            sep=sep,
            duplicates=duplicates,
            rating_scale=rating_scale,
        )
    if implicit and data.ratings is not None:
        data = Interactions(
            data.users, data.items, data.user_idx, data.item_idx, None, data.timestamps
        )
    return data


def parse_params(cls: type[Recommender], pairs: Sequence[str]) -> dict[str, Any]:
    """Turn ``("n_factors=50", "learning_rate=0.01")`` into typed values via ``Param.parse``."""
    specs = cls.param_specs()
    out: dict[str, Any] = {}
    for pair in pairs:
        name, eq, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not eq or not name:
            raise ConfigError(f"--param expects NAME=VALUE; got {pair!r}")
        if name not in specs:
            cls._check_names({name: None})  # raises with a did-you-mean hint
        out[name] = specs[name].parse(text)
    return out


def build_model(name: str, pairs: Sequence[str]) -> Recommender:
    """Instantiate registered model ``name`` with ``--param`` values, validated now."""
    cls = get_model_class(name)
    model = cls(**parse_params(cls, pairs))
    model._validate_params()
    return model


def format_table(
    rows: list[dict[str, Any]],
    columns: Sequence[str] | None = None,
    formats: dict[str, str] | None = None,
) -> str:
    """A plain aligned text table (numbers right-aligned; floats with 4 decimals unless
    ``formats`` gives a column its own format spec, e.g. ``{"fit s": ".2f"}``)."""
    formats = formats or {}
    if not rows:
        return "(no rows)"
    cols = list(columns) if columns is not None else list(rows[0])

    def cell(v: Any, col: str) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return "nan" if v != v else format(v, formats.get(col, ".4f"))
        return str(v)

    text = [[cell(r.get(c), c) for c in cols] for r in rows]
    widths = [max(len(c), *(len(t[j]) for t in text)) for j, c in enumerate(cols)]
    numeric = [
        all(isinstance(r.get(c), (int, float)) or r.get(c) is None for r in rows) for c in cols
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(cols), line(["-" * w for w in widths])]
    out += [line(t) for t in text]
    return "\n".join(out)


def check_output_dir(path: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise DataError(f"cannot write to {path!r}: directory {parent!r} does not exist")
