"""Checks every command runs on its paths before any long work starts (docs/cli.md).

Each raises typer.BadParameter naming the option and the path, which the top-level
handler in memlat.cli prints as one line on stderr with exit status 2.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer


def _bad(hint: str, message: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=hint)


def input_file(path: Path | str | None, hint: str) -> None:
    """`path` (when given) is an existing, readable regular file."""
    if path is None:
        return
    p = Path(path)
    if not p.exists():
        raise _bad(hint, f"{p}: no such file")
    if not p.is_file():
        raise _bad(hint, f"{p}: not a regular file")
    if not os.access(p, os.R_OK):
        raise _bad(hint, f"{p}: not readable")


def _parent_writable(p: Path, hint: str) -> None:
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise _bad(hint, f"{p}: folder {parent} does not exist")
    if not parent.is_dir():
        raise _bad(hint, f"{p}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _bad(hint, f"{p}: folder {parent} is not writable")


def output_file(path: Path | str | None, hint: str, *, force: bool = False,
                inputs: tuple[Path | str | None, ...] = ()) -> None:
    """`path` (when given) can be written as a file: its folder exists and is writable,
    it is not a folder, it is none of the command's `inputs`, and an existing file is
    replaced only with `force` (nothing memlat did not create is overwritten by default).
    Missing parent folders are never created."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise _bad(hint, f"{p}: is a folder, expected a file name")
    for src in inputs:
        if src is not None and p.exists() and Path(src).exists() and p.samefile(src):
            raise _bad(hint, f"{p}: is also an input of this command; refusing to "
                             "overwrite it")
    if p.exists() and not force:
        raise _bad(hint, f"{p}: exists; pass --force to replace it")
    if p.exists() and not os.access(p, os.W_OK):
        raise _bad(hint, f"{p}: not writable")
    _parent_writable(p, hint)


def output_dir(path: Path | str | None, hint: str) -> None:
    """`path` (when given) is an existing writable folder, or can be created as one in an
    existing writable folder (its parents are never created)."""
    if path is None:
        return
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise _bad(hint, f"{p}: exists and is not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise _bad(hint, f"{p}: folder is not writable")
        return
    _parent_writable(p, hint)
