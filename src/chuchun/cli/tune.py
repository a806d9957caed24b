"""``chuchun tune``: hyperparameter search from the command line.

A thin front-end over :mod:`chuchun.evaluation.search`. ``--data`` is the training data: the
search cuts its own validation split out of it, so no test data is ever seen; the best
configuration is refitted on all of ``--data`` and saved with ``--out``::

    chuchun tune --data train.csv --model FunkSVD --param n_factors=16,32,64 \\
        --param learning_rate=0.001:0.05:log --search bayesian --trials 20 --metric rmse
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from chuchun._exceptions import ConfigError
from chuchun.cli._common import (
    build_model,
    check_output_dir,
    data_options,
    fit_arguments,
    format_table,
    load_data,
    side_options,
    write_output,
)
from chuchun.cli.commands import _py
from chuchun.models._base import Recommender

__all__ = ["parse_space", "tune_command"]


def parse_space(cls: type[Recommender], pairs: tuple[str, ...], search: str) -> dict[str, Any]:
    """``--param`` values of a search: ``NAME=A,B,C`` (values) or ``NAME=LOW:HIGH[:log]``
    (a range, for random and Bayesian search; integers for integer parameters)."""
    from chuchun.evaluation.search import Integer, Real

    specs = cls.param_specs()
    space: dict[str, Any] = {}
    for pair in pairs:
        name, eq, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not eq or not name or not text.strip():
            raise ConfigError(f"--param expects NAME=A,B,C or NAME=LOW:HIGH[:log]; got {pair!r}")
        if name not in specs:
            cls._check_names({name: None})  # raises with a did-you-mean hint
        spec = specs[name]
        parts = text.split(":")
        if len(parts) in (2, 3) and ":" in text:
            if search == "grid":
                raise ConfigError(f"--search grid needs the values of {name} listed "
                                  f"(e.g. {name}=A,B,C), not the range {text!r}")
            log = len(parts) == 3
            if log and parts[2].strip().lower() != "log":
                raise ConfigError(f"--param {pair!r}: a range is LOW:HIGH or LOW:HIGH:log")
            low, high = spec.parse(parts[0]), spec.parse(parts[1])
            integral = int in spec.kinds and float not in spec.kinds
            if not integral and float not in spec.kinds:
                raise ConfigError(f"{name} is not numeric; list its values: {name}=A,B,C")
            space[name] = (Integer if integral else Real)(low, high, log=log)
        else:
            space[name] = [spec.parse(v) for v in text.split(",")]
    if not space:
        raise ConfigError("tune needs at least one --param NAME=A,B,C or NAME=LOW:HIGH[:log]")
    return space


@click.command("tune")
@data_options
@side_options
@click.option("--model", "model_name", required=True,
              help="Model to tune (NAME, or NAME:param=value,... for fixed parameters).")
@click.option("--param", "params", multiple=True, required=True,
              metavar="NAME=A,B,C|NAME=LOW:HIGH[:log]",
              help="A hyperparameter to search: its values, or a range (repeatable).")
@click.option("--search", type=click.Choice(["grid", "random", "bayesian"]), default="random",
              show_default=True, help="Search strategy.")
@click.option("--trials", type=click.IntRange(min=1), default=20, show_default=True,
              help="Trials of random and Bayesian search.")
@click.option("--metric", default=None,
              help="Metric to optimise, e.g. ndcg@10 or rmse (default: rmse for rating "
              "models, ndcg@k otherwise).")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Cut-off of ranking metrics (overridden by --metric NAME@K).")
@click.option("--validation-fraction", type=click.FloatRange(0, 1, min_open=True,
              max_open=True), default=0.2, show_default=True,
              help="Share of --data held out (at random) to score each trial.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the validation split and of the search.")
@click.option("--out", default=None, type=click.Path(),
              help="Save the best configuration, refitted on all of --data, here.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="Output format of the trials.")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="Write the trials to this file instead of standard output.")
def tune_command(
    model_name: str,
    params: tuple[str, ...],
    search: str,
    trials: int,
    metric: str | None,
    k: int,
    validation_fraction: float,
    seed: int,
    out: str | None,
    fmt: str,
    output: str | None,
    **data_kw: Any,
) -> None:
    """Search hyperparameters on a validation split cut from --data (the training data)."""
    from chuchun.cli._feedback import warm_up
    from chuchun.evaluation.search import BayesianSearch, GridSearch, RandomSearch

    model = build_model(model_name, ())
    space = parse_space(type(model), params, search)
    if metric is not None and "@" in metric:
        name, _, cut = metric.partition("@")
        try:
            k = int(cut)
        except ValueError:
            raise ConfigError(f"--metric {metric!r}: the cut-off after @ must be an integer") \
                from None
        metric = name
    if out is not None:
        check_output_dir(out)
    loaded = load_data(**data_kw)
    extra = fit_arguments(model, loaded)
    options: dict[str, Any] = {"scoring": metric, "k": k, "validation": validation_fraction,
                               "random_state": seed, "fit_params": extra,
                               "refit": out is not None}
    searcher: Any
    if search == "grid":
        searcher = GridSearch(model, space, **options)
    elif search == "random":
        searcher = RandomSearch(model, space, n_trials=trials, **options)
    else:
        searcher = BayesianSearch(model, space, n_trials=trials, **options)
    warm_up(model, loaded.data, extra)
    start = time.perf_counter()
    searcher.fit(loaded.data)
    seconds = time.perf_counter() - start
    table = searcher.trials_.reset_index()
    names = [c for c in table.columns if c not in ("error",)] + (
        ["error"] if table["error"].astype(bool).any() else [])
    records = [{c: _cell(row[c]) for c in names} for _, row in table.iterrows()]
    summary = (f"{search} search over {', '.join(space)} of {type(model).__name__}: "
               f"{len(records)} trials on a {validation_fraction:.0%} validation split of "
               f"{loaded.name or data_kw['data_path']} ({seconds:.1f} s)")
    best = {"params": searcher.best_params_, searcher.metric_key: searcher.best_score_}
    if fmt == "json":
        write_output(json.dumps({"summary": summary, "metric": searcher.metric_key,
                                 "trials": records, "best": best}, indent=2, default=_py),
                     output)
    elif fmt == "csv":
        import pandas as pd

        write_output(pd.DataFrame(records).to_csv(index=False), output)
    else:
        best_text = ", ".join(f"{n}={v}" for n, v in searcher.best_params_.items())
        write_output(
            f"{summary}\n\n{format_table(records, formats={'fit_seconds': '.2f'})}\n\n"
            f"best: {best_text} ({searcher.metric_key} {searcher.best_score_:.4f})", output)
    if out is not None:
        from chuchun.io import save_model

        best_model = searcher.best_model_
        if loaded.labels is not None:
            best_model.set_item_labels(loaded.labels)
        save_model(best_model, out)
        click.echo(f"refitted the best configuration on all {len(loaded.data):,} interactions; "
                   f"saved to {out}", err=output is None and fmt != "table")


def _cell(value: Any) -> Any:
    value = _py(value)
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    return value
