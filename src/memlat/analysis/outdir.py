"""Output folders that never mix two runs and never hold a half-written report.

A report is written into a fresh temporary sibling folder (`.<name>.partial-<pid>`) and
moved into place only once complete, so an interrupted run leaves nothing behind. The
folder then holds `.memlat-manifest`, the list of every file memlat wrote there.

Re-using a folder:

* a missing or empty folder is simply used;
* a non-empty folder is refused unless `force`; with `force`, only the files listed in
  its manifest (the previous report) are removed. Files memlat did not write stay
  untouched, and if the new report would overwrite one of them the run is refused
  before anything is removed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

from memlat.errors import ConfigError

MANIFEST = ".memlat-manifest"
_HEADER = "# files written by memlat into this folder; `--force` removes only these\n"


def read_manifest(folder: Path) -> list[str]:
    """Relative paths listed in `folder`'s manifest (empty when there is none)."""
    path = folder / MANIFEST
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()}


def check_output_folder(out: Path | str, *, force: bool, option: str = "--out",
                        patterns: Sequence[str] = ()) -> None:
    """Refuse, before any work, a folder the report could not be written to.

    Raises ConfigError (naming `option` and the path) when `out` is an existing file,
    its parent folder is missing, it is a non-empty folder and `force` is false, or (with
    `force`) it holds a file memlat did not write whose relative path matches one of the
    glob `patterns` of the files the report will write.
    """
    p = Path(out)
    parent = p.parent
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{p} exists and is not a folder", location=option)
    if not parent.is_dir():
        raise ConfigError(f"{p}: folder {parent} does not exist", location=option)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{p}: folder {parent} is not writable", location=option)
    if p.is_dir() and force and patterns:
        foreign = sorted(_files_under(p) - set(read_manifest(p)) - {MANIFEST})
        clash = [f for f in foreign if any(fnmatch.fnmatch(f, pat) for pat in patterns)]
        if clash:
            raise ConfigError(f"{p} holds {clash[0]}, which memlat did not write; "
                              "refusing to overwrite it", location=option)
    if p.is_dir() and any(p.iterdir()) and not force:
        has_manifest = (p / MANIFEST).is_file()
        raise ConfigError(
            f"{p} is not empty; " + ("pass --force to replace what memlat wrote there"
                                     if has_manifest else
                                     "choose a new folder (memlat did not write this one)"),
            location=option)


@contextlib.contextmanager
def staged_folder(out: Path | str, *, force: bool = False,
                  option: str = "--out") -> Iterator[Path]:
    """Yield a fresh temporary folder beside `out`; on success, publish it as `out`.

    On any exception (KeyboardInterrupt included) the temporary folder is removed and
    `out` is left exactly as it was.
    """
    out = Path(out)
    check_output_folder(out, force=force, option=option)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        written = sorted(_files_under(tmp))
        (tmp / MANIFEST).write_text(_HEADER + "".join(f"{w}\n" for w in written))
        _publish(tmp, out, option)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _publish(tmp: Path, out: Path, option: str) -> None:
    """Move the complete report `tmp` to `out`, replacing only memlat's previous files.

    SIGINT is held off for the few renames, so a report is either all there or absent.
    """
    blocked = hasattr(signal, "pthread_sigmask")
    if blocked:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        if not out.exists():
            tmp.rename(out)
            return
        old = set(read_manifest(out)) | {MANIFEST}
        new = _files_under(tmp)
        foreign = _files_under(out) - old
        clash = sorted(foreign & new)
        if clash:
            raise ConfigError(f"{out} holds {clash[0]}, which memlat did not write; "
                              "refusing to overwrite it", location=option)
        for rel in sorted(old):
            target = out / rel
            if target.is_file() or target.is_symlink():
                target.unlink()
        for folder in sorted({(out / rel).parent for rel in old},
                             key=lambda d: len(d.parts), reverse=True):
            while folder != out and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
                folder = folder.parent
        if not any(out.iterdir()):
            out.rmdir()
            tmp.rename(out)
            return
        for rel in sorted(new):  # beside files memlat did not write: move file by file
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / rel, out / rel)
    finally:
        if blocked:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
