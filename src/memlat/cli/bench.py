"""`memlat bench`: run the benchmark suites and print their figures."""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    """Add `memlat bench` to `app`."""

    @app.command()
    def bench(
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
        suite: list[str] = typer.Option(None, "--suite", help="Run only these suites."),
        quick: bool = typer.Option(False, "--quick", help="Smaller inputs, for smoke tests."),
    ) -> None:
        """Measure throughputs and ratios against same-run baselines."""
        from memlat.bench import run_all

        figures = run_all(suite or None, quick=quick)
        if json_out:
            typer.echo(json.dumps(figures, sort_keys=True))
        else:
            for key, value in sorted(figures.items()):
                typer.echo(f"{key:40s} {value}")
