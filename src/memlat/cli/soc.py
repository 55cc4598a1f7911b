"""`memlat soc`: list the built-in SoC profiles and show one (or a YAML/DT file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # the CLI imports the library when a command runs (fast start-up)
    from rich.console import Console

    from memlat.config import SocConfig


def _summary(soc: SocConfig) -> dict[str, Any]:
    return {
        "name": soc.name,
        "aliases": soc.soc.aliases,
        "compatible": soc.soc.compatible,
        "description": soc.soc.description,
        "dialect": soc.dialect,
        "cpus": soc.ncpus,
        "groups": [g.name for g in soc.groups],
        "monitors": len(soc.monitors()),
        "commands": soc.command_count(),
    }


def _show_json(soc: SocConfig) -> dict[str, Any]:
    data = soc.model_dump(mode="json")
    data["warnings"] = soc.warnings
    data["commands"] = {"v8" if soc.dialect == "v8" else "rfc2024": soc.command_count()}
    return data


def _fmt_events(slots: list[int]) -> str:
    return "[" + ", ".join("0xff" if x == 0xFF else str(x) for x in slots) + "]"


def _fmt_map(rows: list[tuple[int, int]]) -> str:
    return ", ".join(f"{c}→{v}" for c, v in rows)


def _print_show(console: Console, soc: SocConfig) -> None:
    from rich.table import Table

    console.print(f"[bold]{soc.name}[/bold] — {soc.soc.description}")
    if soc.soc.source:
        console.print(f"source: {soc.soc.source}")
    console.print(f"dialect {soc.dialect} · {soc.ncpus} CPUs · sample_ms {soc.sample_ms} · "
                  f"freq method {soc.freq_method} · common events "
                  f"{_fmt_events(soc.common_events.slots(soc.dialect))}"
                  f" · {soc.command_count()} probe commands")
    groups = Table(title="memory groups", show_lines=False)
    for col in ("group", "hw_type", "min", "max", "cpumask", "events", "ladder"):
        groups.add_column(col)
    for g in soc.groups:
        unit = "" if g.is_level else " kHz"
        ladder = ", ".join(str(v if g.is_level else v // 1000 if v % 1000 == 0 else v / 1000)
                           for v in g.ladder)
        groups.add_row(g.name, str(g.hw_type), f"{g.min_value}{unit}", f"{g.max_value}{unit}",
                       f"{soc.mem_group_cpumask(g):#x}",
                       _fmt_events(g.events.slots()),
                       ladder + ("" if g.is_level else " MHz"))
    console.print(groups)
    mons = Table(title="monitors (map: cpu MHz → mem MHz or level)", show_lines=False)
    for col in ("group", "idx", "name", "cpumask", "type", "ipm_ceil", "be", "extra", "map"):
        mons.add_column(col)
    for g, i, m in soc.monitors():
        extra = ", ".join(f"{k.lower()}={v}" for k, v in m.optional_knobs())
        be = str(m.be_floor) if soc.dialect == "v8" else "-"
        mons.add_row(g.name, str(i), m.wire_name(i, soc.dialect), f"{m.cpus:#x}",
                     "compute" if m.compute else "ipm", str(m.ipm), be, extra,
                     _fmt_map(m.map))
    console.print(mons)
    for w in soc.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")


def register(app: typer.Typer) -> None:
    """Add `memlat soc list` and `memlat soc show` to `app`."""
    soc_app = typer.Typer(help="SoC profiles: list the built-in ones, show one.",
                          no_args_is_help=True)

    @soc_app.command("list")
    def list_cmd(
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List the built-in SoC profiles."""
        from rich.console import Console
        from rich.table import Table

        from memlat.config import list_profiles, load_profile

        rows = [_summary(load_profile(n)) for n in list_profiles()]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table(title="built-in SoC profiles")
        for col in ("name", "aliases", "CPUs", "groups", "monitors", "commands",
                    "description"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["name"], ", ".join(r["aliases"]), str(r["cpus"]),
                          ", ".join(r["groups"]), str(r["monitors"]), str(r["commands"]),
                          r["description"])
        Console(width=160).print(table)

    @soc_app.command("show")
    def show_cmd(
        name: Annotated[str | None, typer.Argument(
            help="Profile name, alias, or a YAML file path.")] = None,
        dts: Annotated[Path | None, typer.Option("--dts", help="Read a device tree.")] = None,
        dialect: Annotated[str | None, typer.Option(
            "--dialect", help="v8 or rfc2024 (default: the profile's).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Show one SoC configuration: groups, ladders, monitors and maps."""
        from rich.console import Console

        from memlat.config import load_config
        from memlat.errors import ConfigError

        try:
            soc = load_config(soc=None if dts else name, dts=dts, dialect=dialect)
        except ConfigError as exc:
            typer.echo(f"memlat soc show: {exc}", err=True)
            raise typer.Exit(2) from None
        if as_json:
            typer.echo(json.dumps(_show_json(soc), indent=2))
            return
        _print_show(Console(width=200), soc)

    app.add_typer(soc_app, name="soc")
