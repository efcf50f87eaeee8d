"""The real bench pipeline at its smallest scale: real servers, real Locust, real report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import ROOT

pytestmark = pytest.mark.server


def run_bench(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", "--no-harness", "--scenarios", "smoke", "--out", str(out), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )


def ledger_total(ledger: dict) -> int:
    return (ledger["delivered"] + sum(ledger["dropped_by_server"].values())
            + sum(ledger["lost_with_close"].values()) + ledger["in_flight"] + ledger["unexplained"])


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[dict, Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("bench-smoke")
    done = run_bench(out, "--targets", "django,fastapi")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "results.json").read_text()), out, done


def test_every_target_ran_and_the_ledger_closes(smoke):
    data, _, _ = smoke
    assert data["format_version"] == 1 and data["status"] == "complete"
    runs = {r["target"]: r for r in data["runs"]}
    assert set(runs) == {"django", "fastapi"}
    for name, run in runs.items():
        ledger = run["ledger"]
        assert run["status"] == "ok", run["failure"]
        assert ledger["delivered"] > 0 and run["deliveries_per_s"] > 0, name
        assert ledger["unexplained"] == 0, (name, ledger)
        assert ledger["in_flight"] == 0 and ledger["delivered"] == ledger["expected"], (name, ledger)
        assert ledger_total(ledger) == ledger["expected"], (name, ledger)
        # 6 members in rooms of 3 at 5 msg/s: every message reaches its 3 members
        assert ledger["expected"] == run["server"]["delta"]["messages_in"] * 3, (name, ledger)
        assert run["server"]["delta"]["deliveries"] == ledger["delivered"], name


def test_percentiles_are_ordered_and_costs_measured(smoke):
    data, _, _ = smoke
    for run in data["runs"]:
        for key in ("rtt_ms", "latency_ms"):
            p = run[key]
            assert p["count"] > 0
            assert 0 < p["p50"] <= p["p95"] <= p["p99"] <= p["max"], (run["target"], key, p)
        assert run["server"]["cpu_us_per_delivery"] > 0
        assert run["server"]["rss_peak_bytes"] >= run["server"]["rss_before_bytes"] > 0
        assert run["client"]["busiest_process_cpu_pct"] is not None
        assert run["samples"], "server/client/steal samples were taken"


def test_environment_and_exact_commands_are_recorded(smoke):
    data, _, _ = smoke
    env = data["environment"]
    assert env["cores"] >= 1 and env["cpu_model"] and env["kernel"] and env["python"]
    assert env["packages"]["daphne"] and env["packages"]["uvicorn"] and env["packages"]["locust"]
    assert "net.ipv4.tcp_rmem" in env["sysctls"] and "net.core.rmem_max" in env["sysctls"]
    assert "pinned" in env["cpu_plan"]
    assert data["targets"]["django"]["server_command"].startswith("daphne ")
    assert data["targets"]["fastapi"]["server_command"].startswith("uvicorn ")
    assert "--websocket-max-message-size" in data["targets"]["django"]["server_command"]


def test_report_files_are_written(smoke):
    data, out, done = smoke
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert "django" in html and "fastapi" in html and "django" in md
    assert str(out / "report.html") in done.stdout
    assert json.loads((out / "results.json").read_text())["runs"] == data["runs"]


def test_a_server_killed_mid_run_is_reported_and_the_measured_part_kept(tmp_path):
    done = run_bench(tmp_path, "--targets", "fastapi", "--fault", "kill-server")
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["status"] == "complete"
    (run,) = data["runs"]
    assert run["status"] == "failed"
    assert "exited" in run["failure"] and "fastapi" in run["failure"]
    ledger = run["ledger"]
    assert ledger["delivered"] > 0, "what arrived before the kill is kept"
    # nothing can be shown to be on its way without the server's figures: every delivery that did not
    # arrive went down with the connections, none is called late
    assert ledger["in_flight"] == 0 and ledger["unexplained"] == 0, ledger
    assert sum(ledger["lost_with_close"].values()) == ledger["expected"] - ledger["delivered"], ledger
    assert run["fault"]["kind"] == "kill-server" and run["fault"]["fired_at"], run["fault"]
    # every member saw its connection die without a close frame
    assert run["client_closes"] == {"1006": run["params"]["users"]}, run["client_closes"]
    html = (tmp_path / "report.html").read_text()
    assert "exited" in html
