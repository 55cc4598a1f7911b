"""The report of a real short `memlat run`: index.html in headless Chromium, summary.md,
the verdict, and the command that reproduces it.

Chromium is Debian's `chromium` package (installed by .ci/run). The page is loaded from
a copy of index.html alone in another folder, proving it needs nothing beside it; the
page's own script sets `<body data-images="ok:N">` once every image decoded with a
non-zero natural width, read back from --dump-dom after a virtual-time budget.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from memlat.sim.policies import POLICIES

WORKLOADS = ("membench", "mobile_game", "mix")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "memlat", "run", "--duration", "0.3",
                           "--only", ",".join(WORKLOADS), "--seed", "2", "--out", str(out),
                           *extra], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "r"
    proc = _run(out, "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    assert f"report: {out / 'index.html'}" in proc.stdout
    return out


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("headless Chromium is not installed (.ci/run installs Debian's chromium)")
    with tempfile.TemporaryDirectory(prefix="memlat-chromium-") as profile:
        return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=180)


class _Page(HTMLParser):
    """What the test reads back from the rendered DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str | None] = {}
        self.images: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.headline = ""
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_headline = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "img":
            self.images.append(a.get("src") or "")
        elif tag == "table":
            self._table = a.get("id") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "p" and a.get("id") == "headline":
            self._in_headline = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "p":
            self._in_headline = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_headline:
            self.headline += data


@pytest.mark.slow
def test_index_html_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    # self-contained: the page alone, in another folder, still shows every plot
    page = tmp_path / "elsewhere" / "index.html"
    page.parent.mkdir()
    shutil.copy(report / "index.html", page)
    dom = _chromium("--virtual-time-budget=10000", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = _Page()
    parsed.feed(dom.stdout)
    plots = 2 + len(WORKLOADS)  # overview, energy vs slowdown, one busfreq per workload
    assert len(parsed.images) == plots
    assert all(src.startswith("data:image/png;base64,") for src in parsed.images)
    assert parsed.body.get("data-images") == f"ok:{plots}"  # no broken image
    summary = parsed.tables["summary"]
    assert summary[0][:2] == ["policy", "energy vs performance"]
    assert [row[0] for row in summary[1:]] == list(POLICIES)
    assert parsed.headline.startswith("memlat uses ")
    assert "than performance over the 3 workloads" in parsed.headline
    # one table per workload with every policy
    per_workload = [t for name, t in parsed.tables.items()
                    if name not in ("summary", "settings-table")]
    assert len(per_workload) == len(WORKLOADS)
    assert all([r[0] for r in t[1:]] == list(POLICIES) for t in per_workload)

    shot = tmp_path / "shot.png"
    taken = _chromium("--virtual-time-budget=10000", "--window-size=1280,2000",
                      f"--screenshot={shot}", page.as_uri())
    assert taken.returncode == 0 and shot.exists(), taken.stderr[-2000:]
    with Image.open(shot) as img:
        pixels = np.asarray(img.convert("RGB"))
    assert pixels.shape[:2] == (2000, 1280)
    # the plots drew: many distinct colours, and the memlat red of the plots is present
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500
    red = (np.abs(pixels.astype(int) - (0xD6, 0x27, 0x28)).sum(axis=2) < 40).sum()
    assert red > 200


def test_summary_md_says_the_same_in_the_same_order(report: Path) -> None:
    md = (report / "summary.md").read_text()
    html = (report / "index.html").read_text()
    order = [md.index(h) for h in ("## Verdict", "## Per workload", "## Settings")]
    assert order == sorted(order)
    headline = md.split("## Verdict\n\n", 1)[1].split("\n", 1)[0]
    assert headline.startswith("memlat uses ")
    assert headline.replace("'", "&#x27;") in html  # the same verdict on both pages
    for name in ("overview.png", "energy_vs_slowdown.png",
                 *(f"busfreq_{w}.png" for w in WORKLOADS)):
        assert f"]({name})" in md and (report / name).is_file()
    for w in WORKLOADS:
        assert f"### {w}" in md


@pytest.mark.slow
def test_report_lists_its_files_and_the_command_reproduces_it(report: Path,
                                                               tmp_path: Path) -> None:
    manifest = [ln for ln in (report / ".memlat-manifest").read_text().splitlines()
                if not ln.startswith("#")]
    on_disk = sorted(p.relative_to(report).as_posix() for p in report.rglob("*")
                     if p.is_file() and p.name != ".memlat-manifest")
    assert manifest == on_disk
    doc = json.loads((report / "results.json").read_text())
    command = doc["settings"]["command"]
    assert command in (report / "summary.md").read_text()
    args = shlex.split(command)
    assert args[:2] == ["memlat", "run"] and args[args.index("--out") + 1] == str(report)
    args[args.index("--out") + 1] = str(tmp_path / "again")
    proc = subprocess.run([sys.executable, "-m", "memlat", *args[1:]], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert again["results"] == doc["results"]


def test_rerun_into_the_same_folder_needs_force_and_never_mixes(report: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "r"
    shutil.copytree(report, out)
    refused = _run(out, "--jobs", "1")
    assert refused.returncode == 2 and "is not empty; pass --force" in refused.stderr
    forced = subprocess.run([sys.executable, "-m", "memlat", "run", "--duration", "0.2",
                             "--only", "video", "--policies", "memlat,performance", "--force",
                             "--jobs", "1", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert forced.returncode == 0, forced.stderr
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["busfreq_video.png", "energy_vs_slowdown.png", "overview.png"]
    assert sorted((out / "trans_stat").iterdir()) == [out / "trans_stat" / "video"]
