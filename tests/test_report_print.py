"""The report as a reader prints it: a `make bench` run's report (tests/data/results_bench_v5.json, taken
from one, its per-sample rows and flame graphs left out) rendered by headless Chromium to A4, counted with
poppler's pdfinfo and read with pdftotext. The answer and the headline table fit page 1, and the whole
report at most MAX_PAGES: the evidence is folded, and a folded section does not print."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.record import Results
from bench.report import write_report

BENCH = Path(__file__).parent / "data" / "results_bench_v5.json"
CHROMIUM = shutil.which("chromium")
MAX_PAGES = 12


def needed() -> str | None:
    """What this machine lacks to print the report, with the command that installs it (None: nothing)."""
    if CHROMIUM is None:
        return "chromium is not installed: apt-get install -y chromium"
    if shutil.which("pdfinfo") is None or shutil.which("pdftotext") is None:
        return "poppler's pdfinfo and pdftotext are not installed: apt-get install -y poppler-utils"
    return None


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> Path:
    if missing := needed():
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    out = tmp_path_factory.mktemp("printed")
    html = write_report(Results.load(BENCH), out)["html"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(html.as_uri())
            page.pdf(path=str(out / "report.pdf"), format="A4")
        finally:
            browser.close()
    return out / "report.pdf"


def pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[1] for line in info.splitlines() if line.startswith("Pages:")))


def text(pdf: Path, first: int, last: int) -> str:
    return subprocess.run(["pdftotext", "-f", str(first), "-l", str(last), str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout


def test_the_printed_report_keeps_its_answer_on_page_one_and_fits_twelve_pages(printed):
    n = pages(printed)
    assert 1 <= n <= MAX_PAGES, n
    one = text(printed, 1, 1)
    assert "Which carries more chat, as a relay?" in one and "When is Channels enough?" in one
    data = Results.load(BENCH)
    table = one[one.index("first loss and its"):]  # the headline table's head, then its rows
    assert all(t in table for t in data.targets), one  # every target's headline row, on page 1
    assert "first loss and its cause" in one
    rest = text(printed, 1, n)
    assert "Capacity at the SLO" in rest and "Loss autopsy" in rest  # a folded section still shows its heading
    assert "not run" not in rest  # no row of empty cells for what a target did not run


def test_a_folded_section_opens_to_its_evidence(tmp_path):
    """Folding hides nothing from a reader on screen: every folded section's body is in the page."""
    html = write_report(Results.load(BENCH), tmp_path)["html"].read_text()
    for anchor in ("scenarios", "charts", "layers", "autopsy", "hostile", "environment", "method"):
        start = html.index(f'<section id="{anchor}"><details class="fold">')
        body = html[start:html.index("</section>", start)]
        assert "</summary>" in body and len(body.split("</summary>", 1)[1]) > 200, anchor
