"""``chuchun report``: compare several models on one split in an HTML (or JSON) report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from chuchun._exceptions import ConfigError
from chuchun.cli._common import build_model, check_output_dir, data_options, load_data

__all__ = ["report_command"]


def _parse_model(spec: str) -> tuple[str, list[str]]:
    """``"FunkSVD"`` or ``"FunkSVD:n_factors=50,n_epochs=10"`` -> (name, ["n_factors=50", ...])."""
    name, _, rest = spec.partition(":")
    params = [p.strip() for p in rest.split(",") if p.strip()]
    if not name.strip():
        raise ConfigError(f"--model expects NAME or NAME:PARAM=VALUE,...; got {spec!r}")
    return name.strip(), params


def _items_table(data_path: str) -> Any:
    """Titles and genres when --data is a MovieLens release (a name or a directory)."""
    from chuchun.datasets import MOVIELENS, load_dataset, load_movielens

    path = Path(data_path)
    if path.is_dir():
        return load_movielens(path).items
    if not path.exists() and data_path in MOVIELENS:
        return load_dataset(data_path).items
    return None


@click.command("report")
@data_options
@click.option("--model", "model_specs", required=True, multiple=True,
              metavar="NAME[:PARAM=VALUE,...]",
              help="A registered model, optionally with parameters (repeat for each model).")
@click.option("--split", "split_kind", type=click.Choice(["temporal", "holdout"]),
              default="temporal", show_default=True,
              help="temporal: each user's most recent interactions are test; holdout: random "
              "interactions.")
@click.option("--test-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.2, show_default=True, help="Test share of the split.")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Cut-off of the comparison table.")
@click.option("--max-k", type=click.IntRange(min=1), default=50, show_default=True,
              help="Largest cut-off of the metric-by-k plots.")
@click.option("--relevance-threshold", type=float, default=None,
              help="Only test ratings >= this are relevant (default: every test interaction).")
@click.option("--samples", type=click.IntRange(min=0), default=3, show_default=True,
              help="Sample users shown with their lists and explanations.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the split, the bootstrap and the sample users.")
@click.option("--output", required=True, type=click.Path(dir_okay=False),
              help="Report file to write.")
@click.option("--format", "fmt", type=click.Choice(["html", "json"]), default=None,
              help="html (default) or json (default for a .json output).")
def report_command(
    model_specs: tuple[str, ...],
    split_kind: str,
    test_fraction: float,
    k: int,
    max_k: int,
    relevance_threshold: float | None,
    samples: int,
    seed: int,
    output: str,
    fmt: str | None,
    **data_kw: Any,
) -> None:
    """Fit several models on one split of --data and write a comparison report."""
    from chuchun.data import splits
    from chuchun.data.features import ItemFeatures
    from chuchun.evaluation import report

    check_output_dir(output)
    models = {}
    for spec in model_specs:
        name, params = _parse_model(spec)
        label = spec if params else name
        if label in models:
            raise ConfigError(f"--model {spec!r} is given twice")
        models[label] = build_model(name, params)
    data = load_data(**data_kw).data
    if split_kind == "temporal":
        if data.timestamps is None:
            raise ConfigError("--split temporal needs timestamps; the data has none "
                              "(use --split holdout or --timestamp-col)")
        split = splits.user_holdout(data, test_fraction=test_fraction, order="time",
                                    random_state=seed)
    else:
        split = splits.holdout(data, test_fraction=test_fraction, random_state=seed)
    items = _items_table(data_kw["data_path"])
    labels = features = None
    if items is not None:
        labels = dict(zip(items["item"].tolist(), items["title"].tolist(), strict=True))
        features = ItemFeatures.from_pandas(items, multi_valued=["genres"])
    start = time.perf_counter()
    report(models, split, output, k=k, max_k=max_k, relevance_threshold=relevance_threshold,
           labels=labels, item_features=features, n_sample_users=samples,
           format=fmt,  # type: ignore[arg-type]
           data_name=Path(data_kw["data_path"]).name, random_state=seed)
    click.echo(f"wrote {output} ({len(models)} models, {time.perf_counter() - start:.1f} s)")
