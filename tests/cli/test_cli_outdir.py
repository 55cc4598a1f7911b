"""Output folders: fresh or refused, --force removes only what memlat listed, a report is
published whole or not at all (memlat.analysis.outdir)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memlat.analysis.outdir import MANIFEST, read_manifest, staged_folder
from memlat.errors import ConfigError


def _write(folder: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}


def test_fresh_folder_gets_the_report_and_a_manifest(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with staged_folder(out) as tmp:
        assert tmp.parent == tmp_path and tmp != out and not out.exists()
        _write(tmp, {"a.png": "1", "trans_stat/w/ddr": "2"})
    assert _tree(out) == {"a.png": "1", "trans_stat/w/ddr": "2"}
    assert read_manifest(out) == ["a.png", "trans_stat/w/ddr"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no partial folder left


def test_empty_existing_folder_is_used(tmp_path: Path) -> None:
    out = tmp_path / "r"
    out.mkdir()
    with staged_folder(out) as tmp:
        _write(tmp, {"x": "1"})
    assert _tree(out) == {"x": "1"}


def test_non_empty_folder_is_refused_without_force(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with staged_folder(out) as tmp:
        _write(tmp, {"old.png": "old"})
    with pytest.raises(ConfigError, match="not empty; pass --force"), staged_folder(out):
        pytest.fail("must not get here")
    assert _tree(out) == {"old.png": "old"}


def test_force_replaces_only_memlats_files(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with staged_folder(out) as tmp:
        _write(tmp, {"old.png": "old", "results.json": "old", "trans_stat/gone/ddr": "old"})
    _write(out, {"notes.txt": "mine"})  # the user's file beside the report
    with staged_folder(out, force=True) as tmp:
        _write(tmp, {"results.json": "new", "trans_stat/w/ddr": "new"})
    # never a mix of runs: old.png and trans_stat/gone went, the user's file stayed
    assert _tree(out) == {"notes.txt": "mine", "results.json": "new",
                          "trans_stat/w/ddr": "new"}
    assert read_manifest(out) == ["results.json", "trans_stat/w/ddr"]


def test_force_refuses_to_overwrite_a_file_memlat_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "r"
    _write(out, {"results.json": "the user's"})
    with pytest.raises(ConfigError, match=r"holds results\.json"), \
            staged_folder(out, force=True) as tmp:
        _write(tmp, {"results.json": "new"})
    assert _tree(out) == {"results.json": "the user's"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_interrupted_report_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt), staged_folder(out) as tmp:
        _write(tmp, {"half.png": "..."})
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_interrupted_forced_report_keeps_the_previous_one(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with staged_folder(out) as tmp:
        _write(tmp, {"a.png": "old"})
    with pytest.raises(KeyboardInterrupt), staged_folder(out, force=True) as tmp:
        _write(tmp, {"a.png": "new"})
        raise KeyboardInterrupt
    assert _tree(out) == {"a.png": "old"}


@pytest.mark.parametrize(("setup", "match"), [
    ("file", "exists and is not a folder"),
    ("no-parent", "does not exist"),
])
def test_unusable_paths_are_refused_before_work(tmp_path: Path, setup: str,
                                                match: str) -> None:
    out = tmp_path / "r"
    if setup == "file":
        out.write_text("x")
    else:
        out = tmp_path / "missing" / "r"
    with pytest.raises(ConfigError, match=match), staged_folder(out):
        pytest.fail("must not get here")
    assert not (tmp_path / "missing").exists()


def test_force_clash_is_found_before_any_work(tmp_path: Path) -> None:
    """With the report's file patterns, a foreign results.json is refused up front."""
    from memlat.analysis.outdir import check_output_folder
    from memlat.analysis.report import REPORT_PATTERNS

    out = tmp_path / "r"
    _write(out, {"notes.txt": "mine"})
    check_output_folder(out, force=True, patterns=REPORT_PATTERNS)  # no clash: fine
    _write(out, {"trans_stat/w/ddr": "mine too"})
    with pytest.raises(ConfigError, match=r"holds trans_stat/w/ddr"):
        check_output_folder(out, force=True, patterns=REPORT_PATTERNS)
