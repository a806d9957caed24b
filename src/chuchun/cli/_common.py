"""Pieces shared by the CLI commands: data options, ``--param`` parsing, table printing."""

from __future__ import annotations

import codecs
import contextlib
import inspect
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from chuchun._exceptions import ConfigError, DataError
from chuchun.data.interactions import Interactions
from chuchun.models._base import Recommender, get_model_class
from chuchun.models._results import Explanation

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Loaded",
    "build_model",
    "build_models",
    "data_options",
    "explain_pairs",
    "fit_arguments",
    "format_table",
    "load_data",
    "parse_params",
    "side_options",
    "write_output",
]

_DATA_FORMATS = ("csv", "tsv", "parquet")


def data_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--data`` and the options that say how to read it."""
    options = [
        click.option(
            "--data", "data_path", required=True, metavar="FILE|DIR|NAME|-",
            help="Interactions file (.csv, .tsv, .parquet, .dat/.data/.txt with --sep, "
            "optionally .gz), a MovieLens directory, a bundled/cached data set name such as "
            "ml-latest-small, or - for standard input (with --data-format).",
        ),
        click.option("--data-format", "data_format", type=click.Choice(_DATA_FORMATS),
                     default=None,
                     help="Format of --data when its suffix does not tell (standard input)."),
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
        click.option("--sep", default=None,
                     help="Field separator of text files ('\\t' or 'tab' for a tab, '::', ';')."),
        click.option("--no-header", "no_header", is_flag=True,
                     help="The text file has no header row; give the columns with --names."),
        click.option("--names", default=None, metavar="COL,COL,...",
                     help="Column names of a headerless file, e.g. user,item,rating,timestamp."),
        click.option("--id-type", "id_type", type=click.Choice(["str", "int", "auto"]),
                     default="str", show_default=True,
                     help="How ids in text files are read: str keeps them exactly ('007' and "
                     "'7' differ); int requires 64-bit integers; auto uses integers only when "
                     "every id is a plain integer."),
        click.option("--rating-scale", type=(float, float), default=None,
                     metavar="LOW HIGH",
                     help="Declared rating range; ratings outside it are an error."),
        click.option(
            "--duplicates", type=click.Choice(["error", "first", "last", "mean", "sum"]),
            default="error", show_default=True, help="Policy for repeated (user, item) pairs.",
        ),
        click.option("--context", "context", multiple=True, metavar="COL",
                     help="Column of the log kept as per-interaction context and passed to "
                     "models whose fit takes context= (repeatable)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def side_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Side features and labels: ``--item-features``, ``--user-features``, ``--labels``, ..."""
    options = [
        click.option("--item-features", "item_features_path", type=click.Path(dir_okay=False),
                     default=None, help="Table of item features, one row per item."),
        click.option("--user-features", "user_features_path", type=click.Path(dir_okay=False),
                     default=None, help="Table of user features, one row per user."),
        click.option("--feature-id-col", default=None,
                     help="Id column of the feature tables (default: --item-col / --user-col)."),
        click.option("--categorical", multiple=True, metavar="COL",
                     help="Categorical feature column (one-hot; repeatable)."),
        click.option("--multi-valued", "multi_valued", multiple=True, metavar="COL=SEP",
                     help="Multi-valued column and its separator, e.g. genres='|' "
                     "(repeatable; SEP defaults to '|')."),
        click.option("--numeric", multiple=True, metavar="COL",
                     help="Numeric feature column (min-max scaled; repeatable)."),
        click.option("--text", multiple=True, metavar="COL",
                     help="Free-text column (TF-IDF over its words; repeatable)."),
        click.option("--labels", "labels_path", type=click.Path(dir_okay=False), default=None,
                     help="Table of item labels (titles), stored in the model."),
        click.option("--label-col", default="title", show_default=True,
                     help="Label column of --labels (its id column is --item-col, else the "
                     "first column)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@dataclass
class Loaded:
    """What ``--data`` and the side options produced."""

    data: Interactions
    item_features: Any = None
    user_features: Any = None
    labels: pd.Series | None = None
    context: list[str] = field(default_factory=list)
    flagged: set[str] = field(default_factory=set)  # features given by flags (must be used)
    name: str = ""


def unescape(sep: str | None) -> str | None:
    """``--sep '\\t'`` (as typed in a shell) or ``tab`` means a tab character."""
    if sep is None:
        return None
    if sep.lower() == "tab":
        return "\t"
    if "\\" in sep:
        return codecs.decode(sep, "unicode_escape")
    return sep


def load_data(
    data_path: str,
    *,
    data_format: str | None = None,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = None,
    timestamp_col: str | None = None,
    implicit: bool = False,
    sep: str | None = None,
    no_header: bool = False,
    names: str | None = None,
    id_type: str = "str",
    duplicates: str = "error",
    rating_scale: tuple[float, float] | None = None,
    context: Sequence[str] = (),
    item_features_path: str | None = None,
    user_features_path: str | None = None,
    feature_id_col: str | None = None,
    categorical: Sequence[str] = (),
    multi_valued: Sequence[str] = (),
    numeric: Sequence[str] = (),
    text: Sequence[str] = (),
    labels_path: str | None = None,
    label_col: str = "title",
) -> Loaded:
    """Read ``--data`` (a file, standard input, a MovieLens directory or a data set name) and
    the side tables; MovieLens sources bring their own features and titles."""
    from chuchun.datasets import MOVIELENS, load_dataset, load_interactions, load_movielens

    column_names = [c.strip() for c in names.split(",")] if names else None
    if no_header and not column_names:
        raise ConfigError("--no-header needs the column names: --names user,item,rating,...")
    path = Path(data_path)
    out: Loaded
    if data_path != "-" and path.is_dir():
        out = _movielens(load_movielens(path))
    elif data_path != "-" and not path.exists() and data_path in MOVIELENS:
        out = _movielens(load_dataset(data_path))
    else:
        source: Any = path
        if data_path == "-":
            if data_format is None:
                raise ConfigError("--data - reads standard input; say its format with "
                                  "--data-format csv, tsv or parquet")
            source = sys.stdin.buffer
        data = load_interactions(
            source,
            fmt=data_format,
            user_col=user_col,
            item_col=item_col,
            rating_col=None if implicit else (rating_col or "auto"),
            timestamp_col=timestamp_col or "auto",
            sep=unescape(sep),
            header=not no_header,
            names=column_names,
            id_type=id_type,
            duplicates=duplicates,
            rating_scale=rating_scale,
            context_cols=list(context),
        )
        out = Loaded(data, name="standard input" if data_path == "-" else path.name)
    if context and not out.data.context:
        raise ConfigError("--context reads columns of an interaction file; "
                          f"{data_path!r} is a MovieLens data set without context columns")
    out.context = list(context)
    if implicit and out.data.ratings is not None:
        d = out.data
        out.data = Interactions(d.users, d.items, d.user_idx, d.item_idx, None, d.timestamps,
                                context=d.context)
    _side_tables(out, item_features_path, user_features_path, feature_id_col, user_col,
                 item_col, categorical, multi_valued, numeric, text, id_type, sep)
    if labels_path is not None:
        out.labels = _read_labels(labels_path, label_col, item_col, id_type)
    return out


def _movielens(ml: Any) -> Loaded:
    return Loaded(ml.ratings, item_features=ml.item_features(), user_features=ml.user_features(),
                  labels=ml.labels(), name=ml.name)


def _side_tables(
    out: Loaded, item_path: str | None, user_path: str | None, id_col: str | None,
    user_col: str, item_col: str, categorical: Sequence[str], multi_valued: Sequence[str],
    numeric: Sequence[str], text: Sequence[str], id_type: str, sep: str | None,
) -> None:
    from chuchun.data.features import ItemFeatures, UserFeatures, read_table

    kinds = {"categorical": list(categorical), "numeric": list(numeric), "text": list(text)}
    separators: dict[str, str] = {}
    for spec in multi_valued:
        col, eq, value = spec.partition("=")
        separators[col.strip()] = unescape(value) or "|" if eq else "|"
    given = [c for cols in kinds.values() for c in cols] + list(separators)
    if given and item_path is None and user_path is None:
        raise ConfigError("--categorical, --multi-valued, --numeric and --text describe the "
                          "columns of --item-features / --user-features; give one of those")
    tables = [(path, cls, id_col or default_id, attr) for path, cls, default_id, attr in (
        (item_path, ItemFeatures, item_col, "item_features"),
        (user_path, UserFeatures, user_col, "user_features")) if path is not None]
    found = {path: [str(c) for c in read_table(path, sep=unescape(sep), text_cols=[key]).columns]
             for path, _, key, _ in tables}
    unused = [c for c in given if not any(c in cols for cols in found.values())]
    if unused:
        raise ConfigError(f"feature column(s) {unused} are in none of the feature tables "
                          f"({', '.join(f'{p!r}: {c}' for p, c in found.items())})")
    for path, cls, key, attr in tables:
        columns = found[path]
        pick = {kind: [c for c in cols if c in columns] for kind, cols in kinds.items()}
        multi = {c: v for c, v in separators.items() if c in columns}
        if not any(pick.values()) and not multi:
            flags = "--categorical, --multi-valued, --numeric or --text"
            raise ConfigError(f"say which columns of {path!r} are features with {flags}; "
                              f"its columns are {columns}")
        features = cls.from_file(path, id_col=key, sep=unescape(sep),
                                 id_type=id_type,  # type: ignore[arg-type]
                                 multi_valued=multi, **pick)
        setattr(out, attr, features)
        out.flagged.add(attr)


def _read_labels(path: str, label_col: str, item_col: str, id_type: str) -> pd.Series:
    import pandas as pd

    from chuchun.data.features import read_table
    from chuchun.data.vocabulary import ids_from_text

    frame = read_table(path, text_cols=[item_col])
    if label_col not in frame.columns:
        raise ConfigError(f"--label-col {label_col!r} not found in {path!r}; columns are "
                          f"{[str(c) for c in frame.columns]}")
    key = item_col if item_col in frame.columns else frame.columns[0]
    if key == label_col:
        raise ConfigError(f"{path!r} needs an id column besides the labels ({item_col!r})")
    ids = ids_from_text(frame[key].astype(str), id_type, "label id")
    return pd.Series(frame[label_col].astype(str).to_numpy(), index=ids, name=label_col)


def fit_arguments(model: Recommender, loaded: Loaded) -> dict[str, Any]:
    """The side data ``model.fit`` accepts: features given by flags must be accepted; the ones
    a MovieLens source brings are passed where accepted."""
    accepted = set(inspect.signature(type(model)._fit).parameters) - {"self", "data"}
    name = type(model).__name__
    out: dict[str, Any] = {}
    for attr, flag in (("item_features", "--item-features"), ("user_features", "--user-features")):
        value = getattr(loaded, attr)
        if value is None:
            continue
        if attr in accepted:
            out[attr] = value
        elif attr in loaded.flagged:
            raise ConfigError(f"{name} does not use {attr.replace('_', ' ')}; drop {flag} "
                              "or choose a model that takes them (e.g. ContentBased)")
    if loaded.context:
        if "context" not in accepted:
            raise ConfigError(f"{name} does not use per-interaction context; drop --context")
        out["context"] = list(loaded.context)
    return out


def fit_model(model: Recommender, loaded: Loaded, data: Interactions | None = None) -> float:
    """Fit ``model`` (with the side data it takes) and store the labels; returns the fit time
    in seconds, kernel compilation excluded (see :func:`chuchun.cli._feedback.warm_up`)."""
    from chuchun.cli._feedback import warm_up

    train = loaded.data if data is None else data
    extra = fit_arguments(model, loaded)
    warm_up(model, train, extra)
    start = time.perf_counter()
    model.fit(train, **extra)
    seconds = time.perf_counter() - start
    if loaded.labels is not None:
        model.set_item_labels(loaded.labels)
    return seconds


def explain_pairs(
    model: Recommender, users: Sequence[Any], items: Sequence[Any], n_reasons: int | None
) -> list[Explanation]:
    """``model.explain(users, items)``; item reasons carry the model's stored labels."""
    return list(model.explain(list(users), list(items), n_reasons=n_reasons))


def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def write_output(text: str, output: str | None) -> None:
    """Print ``text``, or write it atomically to ``output``."""
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    check_output_dir(output)
    directory = os.path.dirname(os.path.abspath(output))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".chuchun-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
        os.replace(tmp, output)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
    """Instantiate registered model ``name`` with ``--param`` values, validated now.

    ``name`` may carry its own parameters: ``ItemKNN:n_neighbors=40,similarity=cosine``
    (they override ``pairs``).
    """
    name, inline = split_model_spec(name)
    cls = get_model_class(name)
    model = cls(**{**parse_params(cls, pairs), **parse_params(cls, inline)})
    model._validate_params()
    return model


def split_model_spec(spec: str) -> tuple[str, list[str]]:
    """``"ItemKNN:n_neighbors=40,shrinkage=10"`` -> ``("ItemKNN", ["n_neighbors=40", ...])``."""
    name, _, rest = spec.partition(":")
    return name.strip(), [p for p in (x.strip() for x in rest.split(",")) if p]


def build_models(specs: Sequence[str], pairs: Sequence[str]) -> list[Recommender]:
    """Several ``--model`` specs; each shared ``--param`` goes to the models that declare it
    (and must be declared by at least one)."""
    if len(specs) == 1:
        return [build_model(specs[0], pairs)]
    classes = [get_model_class(split_model_spec(s)[0]) for s in specs]
    for pair in pairs:
        name = pair.partition("=")[0].strip().replace("-", "_")
        if not any(name in cls.param_specs() for cls in classes):
            raise ConfigError(f"--param {pair!r}: none of the models "
                              f"{[c.__name__ for c in classes]} has a parameter {name!r}")
    return [
        build_model(spec, [p for p in pairs
                           if p.partition("=")[0].strip().replace("-", "_") in cls.param_specs()])
        for spec, cls in zip(specs, classes, strict=True)
    ]


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
