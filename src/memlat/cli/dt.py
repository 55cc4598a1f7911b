"""`memlat dt check FILE`: validate a device tree (.dts or .dtb) against the shipped
qcom,scmi-memlat binding (dtschema) and memlat's own rules (memlat.config.dtcheck)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add `memlat dt check` to `app`."""
    dt_app = typer.Typer(help="Device trees: check one against the memlat binding.",
                         no_args_is_help=True)

    @dt_app.command("check")
    def check_cmd(
        file: Annotated[Path, typer.Argument(help="A .dts source or a compiled .dtb "
                                             "(e.g. a copy of /sys/firmware/fdt).")],
        include: Annotated[list[Path] | None, typer.Option(
            "-I", "--include", help="Extra #include directory (repeatable).")] = None,
    ) -> None:
        """Validate FILE against bindings/qcom,scmi-memlat.yaml and memlat's rules.

        Exit 0 when it conforms, 1 with one line per problem (node:property: message),
        2 when the file cannot be read or compiled.
        """
        from memlat.config.dtcheck import check
        from memlat.errors import ConfigError

        try:
            result = check(file, tuple(include or ()))
        except ConfigError as exc:
            typer.echo(f"memlat dt check: {exc}", err=True)
            raise typer.Exit(2) from None
        for f in result.findings:
            typer.echo(f"{file}:{f}", err=True)
        if not result.memlat_nodes:
            typer.echo(f"{file}: no node with compatible \"qcom,scmi-memlat\": schema not "
                       "applied (the 2024 RFC binding has none); memlat's rules only")
        if not result.ok:
            typer.echo(f"{file}: {len(result.findings)} problem(s)", err=True)
            raise typer.Exit(1)
        soc = result.soc
        assert soc is not None
        typer.echo(f"{file}: ok ({', '.join(result.memlat_nodes) or 'RFC binding'}; "
                   f"{soc.dialect}, {len(soc.groups)} groups, {len(soc.monitors())} monitors, "
                   f"{soc.command_count()} probe commands)")

    app.add_typer(dt_app, name="dt")
