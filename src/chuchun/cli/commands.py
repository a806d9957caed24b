"""``chuchun fit``, ``recommend``, ``evaluate``, ``info`` and ``models``."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, cast

import click
import numpy as np

from chuchun._exceptions import ConfigError, DataError
from chuchun._progress import progress
from chuchun.cli._common import (
    build_model,
    build_models,
    check_output_dir,
    data_options,
    explain_pairs,
    fit_arguments,
    fit_model,
    format_table,
    load_data,
    side_options,
    write_output,
)

logger = logging.getLogger(__name__)

_PARAM_HELP = "Hyperparameter NAME=VALUE (repeatable); see `chuchun models NAME`."


_UNKNOWN_HELP = ("Policy for ids not seen in training: fallback (popular / baseline items), "
                 "empty (no rows), error.")


@click.command("fit")
@data_options
@side_options
@click.option("--model", "model_name", required=True,
              help="Registered model class name (NAME or NAME:param=value,...).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help=_PARAM_HELP)
@click.option("--out", required=True, type=click.Path(dir_okay=True, file_okay=True),
              help="Artifact destination: a directory, or a file ending in .zip.")
def fit_command(model_name: str, params: tuple[str, ...], out: str, **data_kw: Any) -> None:
    """Train a model on all of --data and save it as an artifact (no evaluation)."""
    from chuchun.io import save_model

    model = build_model(model_name, params)
    check_output_dir(out)
    loaded = load_data(**data_kw)
    data = loaded.data
    logger.info("loaded %r", data)
    seconds = fit_model(model, loaded)
    save_model(model, out)
    labels = " with item labels" if getattr(model, "item_labels_", None) is not None else ""
    click.echo(
        f"fitted {type(model).__name__} on {len(data):,} interactions "
        f"({data.n_users:,} users, {data.n_items:,} items) in {seconds:.2f} s; "
        f"saved to {out}{labels}"
    )


@click.command("recommend")
@click.option("--model", "model_path", required=True, type=click.Path(),
              help="Artifact written by `chuchun fit`.")
@click.option("--user", "users", multiple=True, help="User id (repeatable).")
@click.option("--history", default=None, metavar="ID,ID,...",
              help="Items of a user not seen in training (fold-in); ID=RATING for rating "
              "models, e.g. 318=5,593=4.5.")
@click.option("--history-file", type=click.Path(dir_okay=False), default=None,
              help="File with one item per line (ID or ID,RATING) of a new user (fold-in).")
@click.option("--candidates", default=None, metavar="ID,ID,...",
              help="Rank only these items (e.g. new items known by their features).")
@click.option("--candidates-file", type=click.Path(dir_okay=False), default=None,
              help="File with one candidate item id per line.")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Number of recommendations.")
@click.option("--include-seen", is_flag=True, help="Do not drop items seen in training.")
@click.option("--unknown", type=click.Choice(["fallback", "empty", "error"]), default="fallback",
              show_default=True, help=_UNKNOWN_HELP)
@click.option("--explain", is_flag=True, help="Explain each recommendation.")
@click.option("--n-reasons", type=click.IntRange(min=1), default=3, show_default=True,
              help="Reasons shown per recommendation with --explain.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="Output format.")
def recommend_command(
    model_path: str,
    users: tuple[str, ...],
    history: str | None,
    history_file: str | None,
    candidates: str | None,
    candidates_file: str | None,
    k: int,
    include_seen: bool,
    unknown: str,
    explain: bool,
    n_reasons: int,
    fmt: str,
) -> None:
    """Top-k recommendations for users of a saved model, or for a new user's history."""
    from chuchun.io import load_model

    given = sum([bool(users), history is not None, history_file is not None])
    if given != 1:
        raise click.UsageError("give either --user (repeatable), --history or --history-file")
    if candidates is not None and candidates_file is not None:
        raise click.UsageError("give either --candidates or --candidates-file, not both")
    model = load_model(model_path)
    pool = None
    if candidates is not None or candidates_file is not None:
        pool = _as_model_ids(_read_ids(candidates, candidates_file, "--candidates"),
                             model.items_.numeric)
        _note_unknown(model.items_, pool, "candidate item")
    if users:
        user_ids = _as_model_ids(users, model.users_.numeric)
        recs = model.recommend(
            user_ids, k=k, exclude_seen=not include_seen, candidates=pool,
            unknown=unknown,  # type: ignore[arg-type]
        )
    else:
        if explain:
            raise ConfigError("--explain explains scores of users seen in training; "
                              "it cannot be combined with --history")
        items, ratings = _read_history(history, history_file)
        item_ids = _as_model_ids(tuple(items), model.items_.numeric)
        _note_unknown(model.items_, item_ids, "history item")
        recs = model.recommend_for_history(
            [item_ids], k=k, ratings=None if ratings is None else [ratings],
            exclude_seen=not include_seen, candidates=pool,
        )
        recs = type(recs)(np.array(["(history)"]), recs.item_ids, recs.scores, recs.item_idx)
    labels = model._stored_labels()
    rows = [
        {"user": _py(r.user), "rank": int(r.rank), "item": _py(r.item),
         **({"label": labels.get(_py(r.item), "")} if labels is not None else {}),
         "score": float(r.score)}
        for r in cast(Any, recs.to_pandas()).itertuples(index=False)
    ]
    explanations = (
        explain_pairs(model, [r["user"] for r in rows], [r["item"] for r in rows], n_reasons)
        if explain and rows else []
    )
    _print_recommendations(rows, explanations, fmt, explain)


def _print_recommendations(
    rows: list[dict[str, Any]], explanations: list[Any], fmt: str, explain: bool
) -> None:
    if fmt == "json":
        for row, expl in zip(rows, explanations or [None] * len(rows), strict=True):
            if expl is not None:
                row["explanation"] = {"summary": str(expl).splitlines()[0], **expl.to_dict()}
        click.echo(json.dumps(rows, indent=2, default=_py))
        return
    if fmt == "csv":
        import pandas as pd

        if explain:
            long = []
            for row, expl in zip(rows, explanations, strict=True):
                reasons = list(expl.reasons) or [None]
                for j, reason in enumerate(reasons, start=1):
                    long.append({**row, **({
                        "reason_rank": j, "reason_kind": reason.kind, "reason_id": _py(reason.id),
                        "reason_label": reason.label,
                        "reason_contribution": float(reason.contribution),
                    } if reason is not None else {})})
            frame = pd.DataFrame(long)
        else:
            frame = pd.DataFrame(rows, columns=["user", "rank", "item", "score"]
                                 if not rows else None)
        click.echo(frame.to_csv(index=False), nl=False)
        return
    if not rows:
        click.echo("(no recommendations)")
        return
    click.echo(format_table(rows))
    for row, expl in zip(rows, explanations if explain else [], strict=False):
        name = row.get("label") or row["item"]
        click.echo(f"\nuser {row['user']}, rank {row['rank']}, item {name}: {expl}")


def _list_file(path: str, option: str) -> list[str]:
    """The non-empty lines of a list file given to ``option`` (``#`` starts a comment line)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return [ln.strip() for ln in fh if ln.strip() and not ln.startswith("#")]
    except OSError as exc:
        raise DataError(f"cannot read {option} {path!r}: {exc.strerror}") from None


def _read_ids(text: str | None, path: str | None, flag: str) -> tuple[str, ...]:
    """Ids of ``FLAG ID,ID,...`` or of ``FLAG-file`` (one per line; ``#`` starts a comment)."""
    if text is not None:
        ids = [e.strip() for e in text.split(",") if e.strip()]
        where = flag
    else:
        assert path is not None
        ids = _list_file(path, f"{flag}-file")
        where = f"{flag}-file {path!r}"
    if not ids:
        raise DataError(f"{where} holds no item ids")
    return tuple(ids)


def _note_unknown(vocab: Any, ids: np.ndarray, what: str, outcome: str = "left out") -> None:
    """Say on stderr which of ``ids`` the model's vocabulary ``vocab`` does not know."""
    unknown = [str(_py(x)) for x, j in zip(ids, vocab.index(ids), strict=True) if j < 0]
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more"
                                          if len(unknown) > 5 else "")
        click.echo(f"chuchun: note: {len(unknown)} {what}(s) not in the model, {outcome}: "
                   f"{shown}", err=True)


def _read_history(history: str | None, path: str | None) -> tuple[list[str], list[float] | None]:
    """Items (and ratings, when every entry has one) of ``--history`` / ``--history-file``."""
    if history is not None:
        entries = [e.strip() for e in history.split(",") if e.strip()]
        pairs = [e.rpartition("=") if "=" in e else ("", "", e) for e in entries]
        split = [(a, c) if b else (c, "") for a, b, c in pairs]
        where = "--history"
    else:
        assert path is not None
        lines = _list_file(path, "--history-file")
        fields = [[x.strip() for x in ln.split(",", 1)] + [""] for ln in lines]
        split = [(f[0], f[1]) for f in fields]
        where = f"--history-file {path!r}"
    if not split:
        raise DataError(f"{where} holds no items")
    items = [a for a, _ in split]
    rated = [b for _, b in split]
    if not any(rated):
        return items, None
    if not all(rated):
        raise DataError(f"{where}: give a rating for every item or for none")
    try:
        return items, [float(b) for b in rated]
    except ValueError:
        bad = next(b for b in rated if not _is_float(b))
        raise DataError(f"{where}: rating {bad!r} is not a number") from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@click.command("evaluate")
@data_options
@side_options
@click.option("--model", "model_names", required=True, multiple=True,
              help="Model to evaluate (repeatable), NAME or NAME:param=value,param=value.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Hyperparameter NAME=VALUE (repeatable) for every model that has it.")
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
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="Output format.")
@click.option("--output", type=click.Path(dir_okay=False), default=None,
              help="Write the results to this file instead of standard output.")
def evaluate_command(
    model_names: tuple[str, ...],
    params: tuple[str, ...],
    split_kind: str,
    test_fraction: float,
    folds: int,
    k: int,
    seed: int,
    metrics: tuple[str, ...],
    fmt: str,
    output: str | None,
    **data_kw: Any,
) -> None:
    """Fit models on one split of --data and compare their metrics in one table."""
    from chuchun.cli._feedback import warm_up
    from chuchun.data import splits
    from chuchun.evaluation import cross_validate, evaluate

    models = build_models(model_names, params)
    chosen = list(metrics) or None
    loaded = load_data(**data_kw)
    data = loaded.data
    if split_kind == "temporal" and data.timestamps is None:
        raise ConfigError("--split temporal needs timestamps; the data has none "
                          "(use --split holdout or --timestamp-col)")
    if split_kind == "kfold":
        folds_list = splits.kfold(data, n_folds=folds, random_state=seed)
        described = (f"kfold: {folds} folds over interactions (seed {seed}), "
                     f"{len(data):,} interactions; metrics are means over folds")
        split = folds_list[0]
    elif split_kind == "temporal":
        split = splits.user_holdout(data, test_fraction=test_fraction, order="time",
                                    random_state=seed)
        described = (f"temporal: each user's latest {test_fraction:.0%} of interactions is test "
                     f"-> {len(split.train):,} train / {len(split.test):,} test")
    else:
        split = splits.holdout(data, test_fraction=test_fraction, random_state=seed)
        described = (f"holdout: random {test_fraction:.0%} of interactions is test (seed {seed}) "
                     f"-> {len(split.train):,} train / {len(split.test):,} test")
    results: list[dict[str, Any]] = []
    for model in progress(models, total=len(models), desc="models"):
        extra = fit_arguments(model, loaded)
        warm_up(model, split.train, extra)
        if split_kind == "kfold":
            table = cross_validate(model, folds_list, metrics=chosen, k=k, fit_params=extra)
            scores: dict[str, Any] = {}
            for c in table.columns:
                scores[c] = table.loc["mean", c]
                if not c.startswith(("n_", "fit_", "eval_")):
                    scores[f"{c} (std)"] = table.loc["std", c]
        else:
            scores = dict(evaluate(model, split, metrics=chosen, k=k, fit_params=extra))
        row: dict[str, Any] = {"model": type(model).__name__,
                               "params": _changed_params(model)}
        row.update({name: _number(name, value) for name, value in scores.items()})
        results.append(row)
    _print_results(results, described, data_kw["data_path"], k, fmt, output)


def _changed_params(model: Any) -> str:
    """The hyperparameters that differ from the class defaults, as NAME=VALUE text."""
    specs = type(model).param_specs()
    changed = [f"{n}={v}" for n, v in model.get_params().items()
               if n in specs and v != specs[n].default]
    return ",".join(changed) or "defaults"


def _print_results(results: list[dict[str, Any]], described: str, data_name: str, k: int,
                   fmt: str, output: str | None) -> None:
    columns: list[str] = []
    for row in results:
        columns += [c for c in row if c not in columns]
    if fmt == "json":
        payload = {"data": data_name, "split": described, "k": k, "results": results}
        write_output(json.dumps(payload, indent=2, default=_py), output)
        return
    if fmt == "csv":
        import pandas as pd

        write_output(pd.DataFrame(results, columns=columns).to_csv(index=False), output)
        return
    # metrics as rows, models as columns: many metrics, few models, readable on a terminal
    heads = _unique([r["model"] for r in results])
    table = [{"metric": "params", **{h: r["params"] for h, r in zip(heads, results, strict=True)}}]
    for name in columns:
        if name in ("model", "params"):
            continue
        line: dict[str, Any] = {"metric": name}
        for head, result in zip(heads, results, strict=True):
            value = result.get(name)
            line[head] = f"{value:.2f}" if name.endswith("_seconds") and value is not None \
                else value
        table.append(line)
    text = f"data: {data_name}\nsplit: {described}\n\n" + format_table(table)
    write_output(text, output)


def _unique(names: list[str]) -> list[str]:
    """Column heads for the models: a repeated class gets #2, #3, ..."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return out


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
        except (ValueError, OverflowError):
            pass  # non-integer ids on an integer vocabulary: unknown ids, policy decides
    return np.array(users, dtype=str)


def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _number(name: str, value: Any) -> Any:
    """Counts as integers, everything else as float."""
    value = _py(value)
    if isinstance(value, float) and name.startswith("n_") and value == value and value.is_integer():
        return int(value)
    return float(value) if isinstance(value, float) else value
