"""``chuchun explain`` and ``chuchun similar``: questions to a saved model."""

from __future__ import annotations

import json
from typing import Any

import click

from chuchun._exceptions import ConfigError
from chuchun.cli._common import explain_pairs, format_table
from chuchun.cli.commands import _as_model_ids, _py

__all__ = ["explain_command", "similar_command"]

_FORMAT = click.Choice(["table", "csv", "json"])


@click.command("explain")
@click.option("--model", "model_path", required=True, type=click.Path(),
              help="Artifact written by `chuchun fit`.")
@click.option("--user", required=True, help="User id (seen in training).")
@click.option("--item", "items", required=True, multiple=True,
              help="Item id to explain for the user (repeatable).")
@click.option("--n-reasons", type=click.IntRange(min=1), default=5, show_default=True,
              help="Reasons shown per item (the largest contributions).")
@click.option("--format", "fmt", type=_FORMAT, default="table", show_default=True,
              help="Output format.")
def explain_command(model_path: str, user: str, items: tuple[str, ...], n_reasons: int,
                    fmt: str) -> None:
    """Why a saved model scores items as it does for a user: its reasons, strongest first."""
    from chuchun.io import load_model

    model = load_model(model_path)
    user_id = _as_model_ids((user,), model.users_.numeric)[0]
    item_ids = _as_model_ids(items, model.items_.numeric)
    explanations = explain_pairs(model, [user_id] * len(item_ids), list(item_ids), n_reasons)
    if fmt == "json":
        click.echo(json.dumps([{"summary": str(e).splitlines()[0], **e.to_dict()}
                               for e in explanations], indent=2, default=_py))
    elif fmt == "csv":
        import pandas as pd

        rows = [
            {"user": _py(e.user), "item": _py(e.item), "label": e.label, "score": e.score,
             "reason_rank": j, "reason_kind": r.kind, "reason_id": _py(r.id),
             "reason_label": r.label, "reason_contribution": r.contribution}
            for e in explanations for j, r in enumerate(e.reasons, start=1)
        ]
        click.echo(pd.DataFrame(rows).to_csv(index=False), nl=False)
    else:
        click.echo("\n\n".join(str(e) for e in explanations))
        methods = {e.method for e in explanations if e.method}
        if methods:
            click.echo(f"\n({'; '.join(sorted(methods))})")


@click.command("similar")
@click.option("--model", "model_path", required=True, type=click.Path(),
              help="Artifact written by `chuchun fit`.")
@click.option("--item", "items", multiple=True, help="Item id (repeatable).")
@click.option("--user", "users", multiple=True,
              help="User id (repeatable), for models with a user representation.")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Number of neighbours.")
@click.option("--unknown", type=click.Choice(["fallback", "empty", "error"]), default="fallback",
              show_default=True,
              help="Policy for ids not seen in training: fallback (popular items), empty, error.")
@click.option("--format", "fmt", type=_FORMAT, default="table", show_default=True,
              help="Output format.")
def similar_command(model_path: str, items: tuple[str, ...], users: tuple[str, ...], k: int,
                    unknown: str, fmt: str) -> None:
    """The items most similar to given items (or users most similar to given users)."""
    from chuchun.io import load_model

    if bool(items) == bool(users):
        raise click.UsageError("give --item (repeatable) or --user (repeatable), not both")
    model = load_model(model_path)
    name = type(model).__name__
    if items:
        if not model.has_similar_items():
            raise ConfigError(f"{name} has no item representation to compare; "
                              "use a model such as ItemKNN, ALS or ImplicitALS")
        result = model.similar_items(_as_model_ids(items, model.items_.numeric), k=k,
                                     unknown=unknown)  # type: ignore[arg-type]
        labels = model._stored_labels()
        what = "item"
    else:
        if not model.has_similar_users():
            raise ConfigError(f"{name} has no user representation to compare; "
                              "use --item, or a model such as UserKNN or ALS")
        result = model.similar_users(_as_model_ids(users, model.users_.numeric), k=k,
                                     unknown=unknown)  # type: ignore[arg-type]
        labels = None
        what = "user"
    rows: list[dict[str, Any]] = []
    for r in result.to_pandas().itertuples(index=False):
        row: dict[str, Any] = {"query": _py(r.query), "rank": int(r.rank), what: _py(r.item)}
        if labels is not None:
            row["label"] = labels.get(_py(r.item), "")
        score = float(r.score)
        row["similarity"] = None if score != score else score  # NaN: a fallback neighbour
        rows.append(row)
    if fmt == "json":
        if labels is not None:
            for row in rows:
                row["query_label"] = labels.get(row["query"], "")
        click.echo(json.dumps(rows, indent=2, default=_py))
    elif fmt == "csv":
        import pandas as pd

        columns = ["query", "rank", what, *(["label"] if labels is not None else []),
                   "similarity"]
        click.echo(pd.DataFrame(rows, columns=columns).to_csv(index=False), nl=False)
    elif not rows:
        click.echo("(no similar " + what + "s)")
    else:
        if labels is not None:
            for query in dict.fromkeys(row["query"] for row in rows):
                if labels.get(query):
                    click.echo(f"{query}: {labels[query]}")
        click.echo(format_table(rows))
