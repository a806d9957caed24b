"""``chuchun rules``: mine association rules from a basket-per-line file.

A thin front-end over :mod:`chuchun.rules`::

    chuchun rules --data baskets.csv --min-support 0.01 --min-confidence 0.2 --sort lift --top 20
"""

from __future__ import annotations

import logging
import os
import tempfile

import click
import pandas as pd

from chuchun._exceptions import ChuchunError, ConfigError
from chuchun.rules import METRICS, Apriori, FPGrowth, format_items, read_baskets

__all__ = ["rules_command"]

logger = logging.getLogger(__name__)


def _parse_support(text: str) -> float | int:
    """``"5"`` is a count of transactions, ``"0.05"`` (or ``"5e-2"``) a fraction."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ConfigError(
            f"--min-support must be a fraction such as 0.01 or a count such as 25; got {text!r}"
        ) from None


@click.command("rules")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Basket-per-line file; items separated by --sep, whitespace around items stripped.",
)
@click.option("--sep", default=",", show_default=True, help="Item separator.")
@click.option(
    "--min-support",
    "min_support",
    default="0.01",
    show_default=True,
    help="Fraction of baskets in (0, 1] (e.g. 0.01) or a count of baskets (e.g. 25).",
)
@click.option(
    "--min-confidence",
    default=0.2,
    show_default=True,
    type=float,
    help="Smallest rule confidence, in [0, 1].",
)
@click.option(
    "--min-lift", default=None, type=float, help="Smallest rule lift (default: no limit)."
)
@click.option("--max-len", default=None, type=int, help="Longest itemset (default: no limit).")
@click.option(
    "--algorithm",
    type=click.Choice(["fpgrowth", "apriori"]),
    default="fpgrowth",
    show_default=True,
    help="Itemset miner; both give the same rules.",
)
@click.option(
    "--sort",
    "sort_by",
    type=click.Choice(list(METRICS)),
    default="lift",
    show_default=True,
    help="Order rules by this metric, largest first.",
)
@click.option(
    "--top", default=None, type=click.IntRange(min=1), help="Show only the first N rules."
)
@click.option(
    "--output",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write the rules as CSV here instead of printing a table.",
)
def rules_command(
    data_path: str,
    sep: str,
    min_support: str,
    min_confidence: float,
    min_lift: float | None,
    max_len: int | None,
    algorithm: str,
    sort_by: str,
    top: int | None,
    output: str | None,
) -> None:
    """Mine frequent itemsets and print the association rules A → C with their support,
    confidence, lift, leverage and conviction."""
    try:
        transactions = read_baskets(data_path, sep=sep)
        miner_cls = FPGrowth if algorithm == "fpgrowth" else Apriori
        itemsets = miner_cls(min_support=_parse_support(min_support), max_len=max_len).mine(
            transactions
        )
        rules = itemsets.rules(min_confidence=min_confidence, min_lift=min_lift).sort(
            sort_by, top=top
        )
    except ChuchunError as exc:
        raise click.ClickException(str(exc)) from None
    table = pd.DataFrame(
        {
            "antecedent": [format_items(rules.antecedent(r)) for r in range(len(rules))],
            "consequent": [format_items(rules.consequent(r)) for r in range(len(rules))],
            "support": rules.support,
            "confidence": rules.confidence,
            "lift": rules.lift,
            "leverage": rules.leverage,
            "conviction": rules.conviction,
            "count": rules.counts,
        }
    )
    summary = (
        f"{transactions.n_transactions} baskets, {transactions.n_items} items, "
        f"{len(itemsets)} frequent itemsets, {len(rules)} rules shown"
    )
    if output is not None:
        _write_csv_atomically(table, output)
        click.echo(f"{summary}; written to {output}", err=True)
        return
    click.echo(summary, err=True)
    if len(table):
        click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def _write_csv_atomically(table: pd.DataFrame, path: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".chuchun-", suffix=".csv.tmp", dir=parent)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; a CSV is a normal user file
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            table.to_csv(fh, index=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
