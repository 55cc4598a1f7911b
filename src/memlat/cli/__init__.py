"""The `memlat` command line: a thin typer layer over the library.

Each command group lives in its own module with a `register(app)` function; this module
only assembles them and owns the one error convention every command follows (written in
docs/cli.md; the stable contract is decisions.md §5):

* an error is one message on stderr, `memlat <command>: <what>`, naming the file,
  field or value at fault; never a traceback;
* exit status 2 for bad input or usage (a missing or unreadable file, a value out of
  range, an output path in a missing folder), 1 for a failure at run time (a transport
  that stops answering, a probe command the firmware refused), 130 when interrupted
  (Ctrl-C, SIGINT);
* `main` is the safety net: whatever a command leaves uncaught of memlat's own errors,
  OSError or UnicodeDecodeError becomes such a message. Anything else is a bug and
  keeps its traceback.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

import typer

from memlat.errors import ConfigError, DecodeError, MemlatError

# click's exception classes, from wherever this typer takes click (newer typer releases
# ship their own copy, older ones use click itself)
_click_exc = sys.modules[typer.BadParameter.__module__]

app = typer.Typer(
    name="memlat",
    help="Qualcomm SCMI memlat, end to end: SCMI wire, emulated CPUCP, agent, simulation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# module name under memlat.cli -> registers its commands on `app`
_COMMAND_MODULES = ("run", "probe", "replay", "soc", "platform", "bench", "trace", "devfreq",
                    "sweep", "tune", "dt", "decode", "vm")

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# an OSError with one of these is the user's input (a path), not a run-time failure
_INPUT_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM,
                 errno.EEXIST, errno.EROFS, errno.ENAMETOOLONG, errno.ENOTEMPTY,
                 errno.ELOOP}
# the same by type, for libraries (polars) that raise them without an errno
_PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                PermissionError)


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"memlat.cli.{name}")
        module.register(app)


_register_all()


def _tidy_help(command: Any) -> None:
    """Flags take no value, so their help shows no `<bool>` type (every command)."""
    ctx = typer.Context(command, info_name=command.name)
    for param in command.get_params(ctx):  # get_params adds the --help option
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _tidy_help(sub)


def build_command() -> Any:
    """The click command tree of `memlat`, help tidied."""
    command = typer.main.get_command(app)
    _tidy_help(command)
    return command


def _command_path(command: Any, args: Sequence[str]) -> str:
    """`memlat trace convert` for args starting `trace convert ...` (for error prefixes)."""
    words = ["memlat"]
    for arg in args:
        if arg not in getattr(command, "commands", {}):
            break
        words.append(arg)
        command = command.commands[arg]
    return " ".join(words)


def describe_os_error(exc: OSError) -> str:
    """`cannot open /x/y: No such file or directory` (names the path when known)."""
    what = exc.strerror or str(exc)
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    if paths:
        return f"{' -> '.join(str(p) for p in paths)}: {what}"
    return what


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Run `memlat` with argv (default: sys.argv[1:]); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = build_command()
    where = _command_path(command, args)

    def fail(message: str, status: int) -> int:
        typer.echo(f"{where}: {message}", err=True)
        return status

    try:
        status = command.main(args, prog_name="memlat", standalone_mode=False)
    except _click_exc.NoArgsIsHelpError as exc:  # `memlat trace`: the group's help
        exc.show()
        return EXIT_USAGE
    except _click_exc.ClickException as exc:  # usage errors: exit_code 2
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        return fail(exc.format_message() + hint, exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        status = EXIT_INTERRUPTED
    except (ConfigError, DecodeError) as exc:
        return fail(str(exc), EXIT_USAGE)
    except MemlatError as exc:
        return fail(str(exc), EXIT_RUNTIME)
    except UnicodeDecodeError as exc:
        return fail(f"input is not UTF-8 text (byte offset {exc.start}: {exc.reason})",
                    EXIT_USAGE)
    except BrokenPipeError:
        return EXIT_RUNTIME  # the reader went away (`memlat soc list | head`): say nothing
    except OSError as exc:
        path_error = exc.errno in _INPUT_ERRNOS or isinstance(exc, _PATH_ERRORS)
        return fail(describe_os_error(exc), EXIT_USAGE if path_error else EXIT_RUNTIME)
    if status == EXIT_INTERRUPTED:  # typer turns KeyboardInterrupt into Exit(130)
        typer.echo(f"\n{where}: interrupted", err=True)
    return status if isinstance(status, int) else 0


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run and exit with the status of the convention.

    After an interrupt memlat's own cleanup has already run (temporary report folders
    removed, workers terminated, sockets and FUSE mounts released, all in `finally`
    blocks), so the process leaves at once: interpreter teardown of the plotting and
    numeric libraries alone takes about a second, which would break the 2 s bound.
    """
    status = run_cli(argv)
    if status == EXIT_INTERRUPTED:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(status)
    sys.exit(status)
