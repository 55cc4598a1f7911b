"""`memlat bench`: run the benchmark suites and print their figures."""

from __future__ import annotations

import json
from typing import Any

import typer

from memlat.bench import SUITES

_SUITE_METAVAR = "|".join(SUITES)
_SUITE_HELP = f"Run only this suite (repeat for more): {', '.join(SUITES)}."


def _check_suites(names: list[str] | None) -> list[str] | None:
    bad = [n for n in names or () if n not in SUITES]
    if bad:
        raise typer.BadParameter(f"unknown suite {', '.join(map(repr, bad))}; "
                                 f"choose from {', '.join(SUITES)}", param_hint="--suite")
    return names


def flatten(figures: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested figures as (dotted.name, value) rows, sorted by name."""
    rows: list[tuple[str, Any]] = []
    for key, value in sorted(figures.items()):
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += flatten(value, f"{name}.")
        else:
            rows.append((name, value))
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "-"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def register(app: typer.Typer) -> None:
    """Add `memlat bench` to `app`."""

    @app.command()
    def bench(
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
        suite: list[str] = typer.Option(
            None, "--suite", metavar=_SUITE_METAVAR, callback=_check_suites,
            help=_SUITE_HELP),
        quick: bool = typer.Option(False, "--quick", help="Smaller inputs, for smoke tests."),
    ) -> None:
        """Measure throughputs and ratios against same-run baselines."""
        from rich.console import Console
        from rich.table import Table

        from memlat.bench import run_all

        figures = run_all(suite or None, quick=quick)
        if json_out:
            typer.echo(json.dumps(figures, sort_keys=True))
            return
        table = Table(title="memlat bench (ratios against same-run baselines)",
                      title_justify="left")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for name, value in flatten(figures):
            table.add_row(name, _fmt(value))
        Console(width=max(100, Console().width)).print(table)
