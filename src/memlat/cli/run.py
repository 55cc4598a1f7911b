"""`memlat run`: the main job (placeholder until the simulation issue lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `memlat run` to `app`."""

    @app.command()
    def run() -> None:
        """Run the main job (not yet implemented)."""
        typer.echo("memlat run: not yet implemented", err=True)
        raise typer.Exit(2)
