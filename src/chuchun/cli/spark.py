"""``--engine spark``: run ``chuchun fit`` and ``chuchun evaluate`` on Spark.

:func:`install` adds ``--engine {local,spark}`` and ``--spark-master URL`` to the ``fit`` and
``evaluate`` commands and, when ``--engine spark`` is given, sends them here: the data is read
into Spark (Parquet, CSV/TSV, a MovieLens 100K directory, or a bundled data set name), the
``chuchun.spark`` model of the same name is fitted there, and ``fit`` saves its ``to_local()``
model as an ordinary artifact. The local path of both commands is left untouched.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import click

from chuchun._exceptions import ConfigError

__all__ = ["install"]

logger = logging.getLogger(__name__)

_SPARK_MODELS = ("ALS", "AssociationRules", "BaselineOnly", "ImplicitALS", "ImplicitItemKNN",
                 "ItemKNN", "Popularity")


def install(group: click.Group) -> None:
    """Give ``group``'s ``fit`` and ``evaluate`` commands the ``--engine`` options."""
    for name, runner in (("fit", _fit), ("evaluate", _evaluate)):
        command = group.commands.get(name)
        if command is None or command.callback is None:
            continue
        command.params.append(click.Option(
            ["--engine"], type=click.Choice(["local", "spark"]), default="local",
            show_default=True, help="Run in this process, or on Spark (pyspark extra)."))
        command.params.append(click.Option(
            ["--spark-master"], default=None, metavar="URL",
            help="Spark master for --engine spark, e.g. local[4] or spark://host:7077 "
            "(default: the session spark-submit created, else local[*])."))
        command.callback = _dispatch(command.callback, runner)


def _dispatch(local: Any, runner: Any) -> Any:
    def callback(*args: Any, engine: str, spark_master: str | None, **kwargs: Any) -> Any:
        if engine == "spark":
            return runner(spark_master=spark_master, **kwargs)
        if spark_master is not None:
            raise ConfigError("--spark-master applies to --engine spark only")
        return local(*args, **kwargs)

    callback.__doc__ = local.__doc__
    return callback


def _model(name: str, pairs: tuple[str, ...]) -> Any:
    from chuchun import spark as chuchun_spark
    from chuchun.cli._common import parse_params

    match = [m for m in _SPARK_MODELS if m.lower() == name.lower()]
    if not match:
        raise ConfigError(f"model {name!r} has no Spark implementation; Spark models are: "
                          f"{', '.join(_SPARK_MODELS)}")
    cls = getattr(chuchun_spark, match[0])
    model = cls(**parse_params(cls, pairs))
    model._validate_params()
    return model


# options of --data that the Spark reader does not take, with the value that means "not given"
_LOCAL_ONLY = {
    "data_format": None, "id_type": "str", "context": (), "item_features_path": None,
    "user_features_path": None, "feature_id_col": None, "categorical": (), "multi_valued": (),
    "numeric": (), "text": (), "labels_path": None, "label_col": "title",
}


def _read(spark_master: str | None, data_path: str, *, user_col: str, item_col: str,
          rating_col: str | None, timestamp_col: str | None, implicit: bool, sep: str | None,
          duplicates: str, rating_scale: tuple[float, float] | None, no_header: bool = False,
          names: str | None = None, **local_only: Any) -> Any:
    from chuchun.cli._common import unescape
    from chuchun.data.interactions import AUTO
    from chuchun.spark import SparkInteractions, get_session

    for key, value in local_only.items():
        if key not in _LOCAL_ONLY:
            raise ConfigError(f"--engine spark does not know the option {key!r}")
        if value not in (_LOCAL_ONLY[key], None) and value != ():
            flag = "--" + key.removesuffix("_path").replace("_", "-")
            raise ConfigError(f"{flag} is not available with --engine spark; Spark reads ids "
                              "as the file types them and takes no side tables")
    if data_path == "-":
        raise ConfigError("--data - (standard input) is not available with --engine spark; "
                          "give a CSV or Parquet path")
    sep = unescape(sep)
    header_names = [n.strip() for n in names.split(",")] if names else None
    if no_header and not header_names:
        raise ConfigError("--no-header needs --names COL,COL,... to name the columns")

    # under spark-submit the JVM is already up (it set the gateway port): keep its master
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    spark = get_session(spark_master or (None if submitted else "local[*]"))
    path = Path(data_path)
    cols: dict[str, Any] = {
        "user_col": user_col, "item_col": item_col,
        "rating_col": None if implicit else (rating_col or AUTO),
        "timestamp_col": timestamp_col or AUTO, "duplicates": duplicates,
        "rating_scale": rating_scale,
    }
    name = path.name.lower()
    if path.is_dir() and (path / "u.data").exists():  # MovieLens 100K
        return SparkInteractions.from_csv(
            path / "u.data", spark=spark, sep="\t", header=False,
            names=["user", "item", "rating", "timestamp"],
            **{**cols, "user_col": "user", "item_col": "item"})
    if name.endswith(".parquet") or path.is_dir() or name.endswith(".pq"):
        return SparkInteractions.from_parquet(path, spark=spark, **cols)
    if path.exists():
        default_sep = "\t" if ".tsv" in name else ","
        extra: dict[str, Any] = {"header": False, "names": header_names} if no_header else {}
        return SparkInteractions.from_csv(path, spark=spark, sep=sep or default_sep, **cols,
                                          **extra)
    from chuchun.cli._common import load_data  # a bundled data set name

    local = load_data(data_path, user_col=user_col, item_col=item_col, rating_col=rating_col,
                      timestamp_col=timestamp_col, implicit=implicit, sep=sep,
                      duplicates=duplicates, rating_scale=rating_scale).data
    return SparkInteractions.from_local(local, spark=spark)


def _fit(*, spark_master: str | None, model_name: str, params: tuple[str, ...], out: str,
         **data_kw: Any) -> None:
    from chuchun.cli._common import check_output_dir
    from chuchun.io import save_model

    model = _model(model_name, params)
    check_output_dir(out)
    data = _read(spark_master, **data_kw).persist()
    start = time.perf_counter()
    model.fit(data)
    local = model.to_local()
    seconds = time.perf_counter() - start
    save_model(local, out)
    click.echo(
        f"fitted {type(model).__name__} on Spark on {data.count():,} interactions "
        f"({data.n_users:,} users, {data.n_items:,} items) in {seconds:.2f} s; saved to {out}"
    )


def _evaluate(*, spark_master: str | None, model_names: tuple[str, ...],
              params: tuple[str, ...], split_kind: str, test_fraction: float, folds: int,
              k: int, seed: int, metrics: tuple[str, ...], fmt: str, output: str | None,
              **data_kw: Any) -> None:
    from chuchun.cli._common import split_model_spec
    from chuchun.spark import evaluation

    if fmt != "table" or output is not None:
        raise ConfigError("--engine spark prints a table; --format and --output are for the "
                          "local engine")
    models = []
    for spec in model_names:
        name, spec_params = split_model_spec(spec)
        models.append((spec, _model(name, (*spec_params, *params))))
    data = _read(spark_master, **data_kw).persist()
    if split_kind == "kfold":
        folds_list = evaluation.kfold(data, n_folds=folds, random_state=seed)
        results: dict[str, dict[str, Any]] = {}
        for spec, model in models:
            table = evaluation.cross_validate(model, folds_list, metrics=list(metrics) or None,
                                              k=k)
            results[spec] = {name: table.loc["mean", name] for name in table.columns}
        click.echo(f"kfold: {folds} folds over interactions (seed {seed}); metrics are means "
                   "over folds")
        _echo_results(results)
        return
    if split_kind == "temporal":
        if not data.has_timestamps:
            raise ConfigError("--split temporal needs timestamps; the data has none "
                              "(use --split holdout or --timestamp-col)")
        split = evaluation.user_holdout(data, test_fraction=test_fraction, order="time",
                                        random_state=seed)
    else:
        split = evaluation.holdout(data, test_fraction=test_fraction, random_state=seed)
    results = {spec: evaluation.evaluate(model, split, metrics=list(metrics) or None, k=k)
               for spec, model in models}
    _echo_results(results)


def _echo_results(results: dict[str, dict[str, Any]]) -> None:
    from chuchun.cli._common import format_table

    names = list(next(iter(results.values())))
    rows = [{"metric": name, **{spec: _cell(name, res[name]) for spec, res in results.items()}}
            for name in names]
    click.echo(format_table(rows))


def _cell(name: str, v: Any) -> int | float:
    whole = float(v).is_integer() and "@" not in name and name not in ("rmse", "mae", "mse")
    return int(v) if whole else float(v)
