"""``chuchun fit``, ``recommend``, ``evaluate``, ``info`` and ``models``."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import click
import numpy as np

from chuchun._exceptions import ConfigError
from chuchun.cli._common import (
    build_model,
    check_output_dir,
    data_options,
    format_table,
    load_data,
)

logger = logging.getLogger(__name__)

_SHOWN = ("rmse", "mae", "mse", "n_test", "n_test_unknown", "fit_seconds")
_PARAM_HELP = "Hyperparameter NAME=VALUE (repeatable); see `chuchun models NAME`."


@click.command("fit")
@data_options
@click.option("--model", "model_name", required=True, help="Registered model class name.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help=_PARAM_HELP)
@click.option("--out", required=True, type=click.Path(dir_okay=True, file_okay=True),
              help="Artifact destination: a directory, or a file ending in .zip.")
def fit_command(model_name: str, params: tuple[str, ...], out: str, **data_kw: Any) -> None:
    """Train a model on all of --data and save it as an artifact (no evaluation)."""
    from chuchun.io import save_model

    model = build_model(model_name, params)
    check_output_dir(out)
    data = load_data(**data_kw)
    logger.info("loaded %r", data)
    start = time.perf_counter()
    model.fit(data)
    seconds = time.perf_counter() - start
    save_model(model, out)
    click.echo(
        f"fitted {type(model).__name__} on {len(data):,} interactions "
        f"({data.n_users:,} users, {data.n_items:,} items) in {seconds:.2f} s; saved to {out}"
    )


@click.command("recommend")
@click.option("--model", "model_path", required=True, type=click.Path(),
              help="Artifact written by `chuchun fit`.")
@click.option("--user", "users", required=True, multiple=True,
              help="User id (repeatable).")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Number of recommendations.")
@click.option("--include-seen", is_flag=True, help="Do not drop items seen in training.")
@click.option("--unknown", type=click.Choice(["fallback", "empty", "error"]), default="error",
              show_default=True, help="Policy for users not in the model.")
@click.option("--explain", is_flag=True, help="Explain each recommendation.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="Output format.")
def recommend_command(
    model_path: str,
    users: tuple[str, ...],
    k: int,
    include_seen: bool,
    unknown: str,
    explain: bool,
    fmt: str,
) -> None:
    """Top-k recommendations for one or more users from a saved model."""
    from chuchun.io import load_model

    model = load_model(model_path)
    user_ids = _as_model_ids(users, model.users_.numeric)
    recs = model.recommend(
        user_ids, k=k, exclude_seen=not include_seen, unknown=unknown  # type: ignore[arg-type]
    )
    table = recs.to_pandas()
    table["user"] = [_py(u) for u in table["user"]]
    table["item"] = [_py(i) for i in table["item"]]
    explanations: list[Any] = []
    if explain and not table.empty:
        explanations = list(model.explain(table["user"].to_numpy(), table["item"].to_numpy()))
    if fmt == "csv":
        click.echo(table.to_csv(index=False), nl=False)
    elif fmt == "json":
        records = table.to_dict(orient="records")
        for rec, expl in zip(records, explanations or [None] * len(records), strict=True):
            rec["score"] = float(rec["score"])
            if expl is not None:
                rec["explanation"] = {
                    "summary": str(expl).splitlines()[0],
                    "reasons": [
                        {"kind": r.kind, "id": _py(r.id), "label": r.label,
                         "contribution": float(r.contribution), "detail": r.detail}
                        for r in expl.reasons
                    ],
                }
        click.echo(json.dumps(records, indent=2, default=_py))
    else:
        if table.empty:
            click.echo("(no recommendations)")
        rows = [
            {"user": r.user, "rank": int(r.rank), "item": r.item, "score": float(r.score)}
            for r in table.itertuples(index=False)
        ]
        if rows:
            click.echo(format_table(rows))
        if explain:
            for row, expl in zip(rows, explanations, strict=True):
                click.echo(f"\nuser {row['user']}, rank {row['rank']}, item {row['item']}: {expl}")


@click.command("evaluate")
@data_options
@click.option("--model", "model_name", required=True, help="Registered model class name.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help=_PARAM_HELP)
@click.option("--split", "split_kind", type=click.Choice(["temporal", "holdout", "kfold"]),
              default="temporal", show_default=True,
              help="temporal: each user's most recent ratings are test; holdout: random "
              "interactions; kfold: k-fold cross-validation over interactions.")
@click.option("--test-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.2, show_default=True, help="Test share for temporal/holdout.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Number of folds for kfold.")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Cut-off of the ranking metrics.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the split.")
@click.option("--metric", "metrics", multiple=True,
              help="Only these metrics (repeatable): rmse, mae, mse, precision, recall, ndcg, "
              "... (default: all that apply).")
def evaluate_command(
    model_name: str,
    params: tuple[str, ...],
    split_kind: str,
    test_fraction: float,
    folds: int,
    k: int,
    seed: int,
    metrics: tuple[str, ...],
    **data_kw: Any,
) -> None:
    """Fit a model on a split of --data and print its metrics."""
    from chuchun.data import splits
    from chuchun.evaluation import cross_validate, evaluate

    model = build_model(model_name, params)
    chosen = list(metrics) or None
    data = load_data(**data_kw)
    if split_kind == "kfold":
        table = cross_validate(model, splits.kfold(data, n_folds=folds, random_state=seed),
                               metrics=chosen, k=k)
        shown = [c for c in table.columns if "@" in c or c in _SHOWN]
        click.echo(table[shown].to_string(float_format=lambda x: f"{x:.4f}"))
        return
    if split_kind == "temporal":
        if data.timestamps is None:
            raise ConfigError("--split temporal needs timestamps; the data has none "
                              "(use --split holdout or --timestamp-col)")
        split = splits.user_holdout(data, test_fraction=test_fraction, order="time",
                                    random_state=seed)
    else:
        split = splits.holdout(data, test_fraction=test_fraction, random_state=seed)
    result = evaluate(model, split, metrics=chosen, k=k)
    rows = [{"metric": name, "value": _number(value)} for name, value in result.items()]
    click.echo(format_table(rows))


@click.command("info")
@click.argument("artifact", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def info_command(artifact: str, as_json: bool) -> None:
    """Describe a saved model: class, parameters, versions, training data."""
    from chuchun.io import load_model, read_manifest

    manifest = read_manifest(artifact)
    model = load_model(artifact)  # verifies the checksum and every array
    if as_json:
        click.echo(json.dumps(manifest, indent=2, sort_keys=True))
        return
    lines = [
        f"model:            {manifest['model_class']}",
        f"users x items:    {model.n_users_:,} x {model.n_items_:,}",
        f"interactions:     {int(model.seen_.nnz):,}",
        f"chuchun version:  {manifest.get('chuchun_version')}",
        f"format version:   {manifest.get('format_version')}",
        f"created:          {manifest.get('created')}",
        f"data fingerprint: {manifest.get('data_fingerprint')}",
        "params:",
    ]
    lines += [f"  {name} = {value!r}" for name, value in manifest["params"].items()]
    click.echo("\n".join(lines))


@click.command("models")
@click.argument("name", required=False)
def models_command(name: str | None) -> None:
    """List the registered models, or the parameters of model NAME."""
    from chuchun.models import get_model_class, registered_models

    if name is None:
        rows = []
        for model_name, cls in registered_models().items():
            doc = (cls.__doc__ or "").strip().splitlines()
            rows.append({"model": model_name,
                         "kind": "rating" if cls.predicts_ratings else "ranking",
                         "summary": doc[0] if doc else ""})
        click.echo(format_table(rows))
        return
    cls = get_model_class(name)
    rows = [
        {"param": pname, "default": repr(spec.default), "accepts": spec.expected(),
         "doc": spec.doc}
        for pname, spec in cls.param_specs().items()
    ]
    click.echo(f"{cls.__name__}: " + ((cls.__doc__ or "").strip().splitlines() or [""])[0])
    click.echo(format_table(rows) if rows else "(no parameters)")


def _as_model_ids(users: tuple[str, ...], numeric: bool) -> np.ndarray:
    if numeric:
        try:
            return np.array([int(u) for u in users], dtype=np.int64)
        except ValueError:
            pass  # non-integer ids on an integer vocabulary: unknown ids, policy decides
    return np.array(users, dtype=str)


def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _number(value: Any) -> Any:
    value = _py(value)
    return float(value) if isinstance(value, float) else value
