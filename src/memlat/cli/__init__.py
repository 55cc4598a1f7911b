"""The `memlat` command line: a thin typer layer over the library.

Each command group lives in its own module with a `register(app)` function; this module
only assembles them. The stable contract is decisions.md §5.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="memlat",
    help="Qualcomm SCMI memlat, end to end: SCMI wire, emulated CPUCP, agent, simulation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# module name under memlat.cli -> registers its commands on `app`
_COMMAND_MODULES = ("run", "probe", "replay", "soc", "platform", "bench", "trace", "devfreq",
                    "sweep", "tune", "vm")


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"memlat.cli.{name}")
        module.register(app)


_register_all()


def main() -> None:
    """Console-script entry point."""
    app()
