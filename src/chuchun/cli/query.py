"""``chuchun explain`` and ``chuchun similar``: questions to a saved model."""

from __future__ import annotations

import inspect
import json
from typing import Any

import click
import numpy as np

from chuchun._exceptions import ConfigError
from chuchun.cli._common import explain_pairs, format_table
from chuchun.cli.commands import _as_model_ids, _note_unknown, _py
from chuchun.models._base import Recommender

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
    cls = type(model)
    if items:
        if not (model.has_similar_items() or cls.similar_items is not Recommender.similar_items):
            raise ConfigError(f"{name} has no item representation to compare; "
                              "use a model such as ItemKNN, ALS or ImplicitALS")
        method: Any = model.similar_items
        query: Any = _as_model_ids(items, model.items_.numeric)
        labels = model._stored_labels()
        what = "item"
    else:
        if not (model.has_similar_users() or cls.similar_users is not Recommender.similar_users):
            raise ConfigError(f"{name} has no user representation to compare; "
                              "use --item, or a model such as UserKNN or ALS")
        method = model.similar_users
        query = _as_model_ids(users, model.users_.numeric)
        labels = None
        what = "user"
    if unknown != "error":
        _note_unknown(model.items_ if what == "item" else model.users_, query, what,
                      "answered with popular items" if unknown == "fallback" and what == "item"
                      else "answered with nothing")
    if "unknown" in inspect.signature(method).parameters:
        result = method(query, k=k, unknown=unknown)
    else:  # a model whose own similar_items has no policy: unknown ids are an error
        vocab = model.items_ if what == "item" else model.users_
        model._map(vocab, query, what, "error" if unknown == "error" else "empty")
        result = method(query, k=k)
    queries = getattr(result, "query_ids", None)
    if queries is None:
        queries = result.user_ids
    rows: list[dict[str, Any]] = []
    for q, query_id in enumerate(queries):
        for j in np.flatnonzero(result.item_idx[q] >= 0):
            row: dict[str, Any] = {"query": _py(query_id), "rank": int(j) + 1,
                                   what: _py(result.item_ids[q, j])}
            if labels is not None:
                row["label"] = labels.get(row[what], "")
            score = float(result.scores[q, j])
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
