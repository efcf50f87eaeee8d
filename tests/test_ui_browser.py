"""`make ui` in a real browser: headless Chromium (Debian's `chromium` package) drives Locust's own
page through one short run on a target chosen from the dropdown, and reads the Chat tab
(bench/load/live.py): deliveries grow while the run is on, and once it is stopped the tab shows
what `/chat/stats` answers and what Locust writes as the run's merged results when it quits.

Without chromium the test skips (`apt-get install -y chromium chromium-driver`; .ci/run installs
it), and fails under CI=1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from bench import ROOT
from bench.run.procs import free_port

pytestmark = pytest.mark.server

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TARGETS = ("fastapi", "fastapi-seed")  # the run chooses the second: not what the form starts with
START_S = 45.0  # the targets, then Locust's web UI
WAIT_MS = 15_000
SHOWN = ("sent", "received", "expected", "delivered", "latency:delivery:count")


class Ui:
    """`python -m bench.run.ui` (what `make ui` runs) on a free port, its output read as it comes."""

    def __init__(self, results: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.run.ui", "--targets", ",".join(TARGETS), "--web-port", str(self.port)],
            cwd=ROOT, env={**os.environ, "CHAT_RESULTS": str(results)}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        pytest.fail(f"Locust's web UI did not answer within {START_S} s:\n{self.output()}")

    def target_urls(self) -> dict[str, str]:
        """The first server URL of each target, as `make ui` printed them."""
        found = (re.match(r"ui: (\S+)\s+(http://\S+?),?(?:\s|$)", line) for line in self.lines)
        return {m[1]: m[2] for m in found if m}

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/chat/stats", timeout=5) as r:
            return json.load(r)

    def stop(self) -> int | None:
        """SIGTERM, as Ctrl-C: Locust writes its results, then the servers stop."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return None

    def output(self) -> str:
        return "".join(self.lines[-40:])


@pytest.fixture
def ui(tmp_path: Path):
    if CHROMIUM is None:
        message = "chromium is not installed: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    started = Ui(tmp_path / "results.json")
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


@pytest.fixture
def page(ui):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.set_default_timeout(WAIT_MS)
            yield tab
        finally:
            browser.close()


def figure(page, name: str) -> float:
    return float(page.locator(f'#chat-live [data-figure="{name}"]').get_attribute("data-value"))


def wait_figure(page, name: str, above: float) -> float:
    page.wait_for_function(
        "([name, above]) => { const e = document.querySelector(`#chat-live [data-figure=\"${name}\"]`);"
        " return e && Number(e.dataset.value) > above; }", arg=[name, above], timeout=WAIT_MS)
    return figure(page, name)


def deliveries(server_url: str) -> int:
    with urllib.request.urlopen(server_url + "/stats", timeout=5) as r:
        return json.load(r)["deliveries"]


def test_a_run_started_from_locusts_page_shows_live_in_the_chat_tab(ui, page, tmp_path: Path):
    page.goto(ui.url + "/")
    page.get_by_text("Custom parameters").click()
    target = page.locator("select[name=chatTarget]")
    assert target.locator("option").all_inner_texts() == list(TARGETS), "the dropdown lists the running targets"
    chosen = TARGETS[1]
    target.select_option(chosen)
    urls = ui.target_urls()
    assert page.locator("input[name=host]").input_value() == urls[chosen], "Host follows the target chosen"
    for name, value in {"userCount": "4", "spawnRate": "4", "chatRoomSize": "2", "chatRate": "10",
                        "chatWarmup": "0.5"}.items():
        page.locator(f"input[name={name}]").fill(value)
    page.get_by_role("button", name=re.compile("^start$", re.I)).click()
    page.get_by_role("tab", name="Chat").click()

    first = wait_figure(page, "received", 0)
    assert wait_figure(page, "received", first) > first, "deliveries grow while the run is on"
    # the charts draw lines over time: deliveries/s, and delivery latency p50 and p95
    page.wait_for_function("[...document.querySelectorAll('#chat-live svg path')]"
                           ".filter(p => p.getAttribute('d').split('L').length > 3).length >= 3")
    assert "[object Object]" not in page.locator("#chat-live").inner_text()
    page.screenshot(path=str(tmp_path / "chat-tab-live.png"), full_page=True)
    live = ui.stats()
    assert live["target"] == chosen and live["hosts"] == [urls[chosen]], live
    assert live["series"] and max(p["deliveries_per_s"] for p in live["series"]) > 0
    # the servers' cost as the run goes, from their /stats (one process: at most one core, within ticks)
    costs = [(p["server_cpu_pct"], p["server_us_per_delivery"]) for p in live["series"]
             if p.get("server_us_per_delivery")]
    assert costs and all(0 < cpu <= 110 and us > 0 for cpu, us in costs), live["series"]
    assert page.locator('#chat-live [data-figure="server_us_per_delivery"]').count() == 1
    assert page.get_by_text("Server CPU per delivery (µs)").count() == 1

    page.get_by_role("button", name=re.compile("^stop$", re.I)).click()
    wait_figure(page, "expected", 0)  # the rooms settled
    deadline = time.monotonic() + 10
    while True:  # the tab refreshes once a second: until it shows the last figures that came in
        shown = {name: figure(page, name) for name in SHOWN}
        final = ui.stats()
        answered = {name: final[name] for name in ("sent", "received")} | {
            name: final["ledger"][name] for name in ("expected", "delivered")} | {
            "latency:delivery:count": final["latency_ms"]["delivery"]["count"]}
        if shown == answered or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert shown == answered
    assert final["state"] == "stopped" and shown["delivered"] > 0
    assert deliveries(urls[chosen]) > 0 and deliveries(urls[TARGETS[0]]) == 0, "members chat on the target chosen"

    assert ui.stop() == 0, ui.output()
    results = json.loads((tmp_path / "results.json").read_text())
    counters = results["counters"]
    assert shown == {"sent": counters["client_sent"], "received": counters["client_received"],
                     "expected": counters["expected"], "delivered": counters["delivered"],
                     "latency:delivery:count": HdrHistogram.decode(results["histograms"]["latency"]).get_total_count()}
