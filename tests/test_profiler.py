"""Layer attribution of server CPU (bench/run/profiler.py): the rule on hand-made stacks, the split on
profiles recorded from daphne and uvicorn (tests/record_profiles.py), the flame graph, and py-spy
itself against live servers."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.run import serverproc
from bench.run.profiler import (
    IDLE,
    LAYER_ORDER,
    OTHER,
    PY_SPY,
    SPLIT_TOLERANCE,
    Profile,
    attribute,
    flame_svg,
    layer_of,
    parse_raw,
    per_delivery_us,
    profile,
)
from bench.targets import TARGETS
from tests.record_profiles import profile_under_load

DATA = Path(__file__).parent / "data"
UVICORN = "<module> (fastapi_chat/serve.py:1);main (uvicorn/main.py:440);Runner.run (asyncio/runners.py:86)"
DAPHNE = "main (django_chat/serve.py:30);run (daphne/server.py:100);_run_once (asyncio/base_events.py:1845)"


@pytest.mark.parametrize("stack, layer", [
    (UVICORN, "event loop"),  # uvloop's C work: nothing above the loop asked for it
    (UVICORN + ";Handle._run (asyncio/events.py:78);send (uvicorn/protocols/websockets/impl.py:5)", "server"),
    (DAPHNE + ";dispatch (channels/consumer.py:67);Queue.__init__ (asyncio/queues.py:33)", "framework"),
    (DAPHNE + ";doRead (twisted/internet/tcp.py:269);deepcopy (copy.py:128)", "server"),  # stdlib: its caller's
    (DAPHNE + ";receive (django_chat/chat/consumers.py:40);dumps (json/__init__.py:231)", "app"),
    (DAPHNE + ";publish (redis/client.py:9);send (channels/layers.py:1)", "framework"),  # innermost known wins
    (DAPHNE + ";EpollSelector.select (selectors.py:451)", IDLE),
    ("Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:69)", IDLE),
    ("_worker (concurrent/futures/thread.py:83);thread_handler (asgiref/sync.py:635)", "framework"),
    ("_worker (concurrent/futures/thread.py:83);_WorkItem.run (concurrent/futures/thread.py:58)", OTHER),
    ("execute (asyncpg/connection.py:1)", "database client"),  # a stack py-spy cut short at its outer end
])
def test_each_sample_goes_to_the_layer_that_asked_for_the_work(stack: str, layer: str):
    assert layer_of(stack) == layer


def recorded(target: str) -> tuple[dict[str, int], dict]:
    """A profile tests/record_profiles.py took, and what the server's /stats counted meanwhile."""
    raw, measured = (DATA / f"profile-{target}.raw").read_text(), (DATA / f"profile-{target}.json").read_text()
    return parse_raw(raw), json.loads(measured)


@pytest.mark.parametrize("target", ["django", "fastapi"])
def test_a_recorded_profile_splits_the_measured_cost_over_the_layers(target: str):
    folded, measured = recorded(target)
    layers = attribute(folded)
    assert list(layers) == LAYER_ORDER and sum(layers.values()) == sum(folded.values()) > 0
    assert all(layers[layer] > 0 for layer in ("server", "framework", "app", "event loop")), layers
    assert layers["redis client"] == layers["database client"] == 0  # in-memory targets
    split = per_delivery_us(layers, measured["cpu_seconds"], measured["deliveries"])
    total = 1e6 * measured["cpu_seconds"] / measured["deliveries"]
    assert IDLE not in split and abs(sum(split.values()) - total) <= SPLIT_TOLERANCE * total
    basis = Profile(folded, measured["rate"], measured["duration_s"], measured["errors"],
                    measured["cpu_seconds"]).basis()
    assert basis.idle_pct is not None and basis.other_pct is not None and basis.errors_pct is not None
    assert basis.idle_pct + basis.other_pct < 5  # the split rests on attributed samples
    assert basis.samples == sum(folded.values()) and basis.errors_pct < 10


def test_daphne_spends_most_in_channels_and_uvicorn_in_its_server():
    """What the recorded sample says (tests/data): per delivery, daphne's target costs ~10× uvicorn's, and
    most of it is Channels and asgiref (a thread hop per event: channels/db.py aclose_old_connections)."""
    django, fastapi = (per_delivery_us(attribute(f), m["cpu_seconds"], m["deliveries"])
                       for f, m in (recorded("django"), recorded("fastapi")))
    assert max(django, key=django.get) == "framework" and max(fastapi, key=fastapi.get) == "server"
    assert sum(django.values()) > 5 * sum(fastapi.values())


def test_the_split_is_proportional_and_leaves_idle_out():
    split = per_delivery_us({"server": 30, "framework": 10, IDLE: 960}, cpu_seconds=2.0, deliveries=10_000)
    assert split == {"server": 150.0, "framework": 50.0}  # 200 µs per delivery, 3:1
    assert per_delivery_us({IDLE: 5}, 1.0, 100) == {} and per_delivery_us({"server": 5}, 1.0, 0) == {}


def test_raw_stacks_are_parsed_and_merged():
    assert parse_raw("a (x.py:1);b (y.py:2) 3\na (x.py:1) 1\na (x.py:1);b (y.py:2) 2\n\n") == \
        {"a (x.py:1);b (y.py:2)": 5, "a (x.py:1)": 1}


def test_the_flame_graph_is_a_static_svg_of_the_widest_frames():
    folded, _ = recorded("django")
    svg = flame_svg(folded, width=800, title="django")
    root = ET.fromstring(svg)  # well-formed, so it inlines in HTML
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and root.get("width") == "800"
    assert "<script" not in svg and "http://" not in svg.replace("http://www.w3.org/2000/svg", "")
    frames = root.findall(f"{ns}g")
    titles = [g.find(f"{ns}title").text for g in frames]
    assert titles[0].startswith("all: ") and any("channels/consumer.py" in t for t in titles)
    widths = [float(g.find(f"{ns}rect").get("width")) for g in frames]
    assert max(widths) <= 800 and min(widths) >= 0.5
    calls = {";".join(stack.split(";")[:depth]) for stack in folded for depth in range(1, stack.count(";") + 2)}
    assert len(frames) == 1 + len(calls)  # every call, and the root: one sample is 2 px wide here
    wide = ET.fromstring(flame_svg(folded, width=800, min_px=40)).findall(f"{ns}g")
    assert 1 < len(wide) < len(frames)  # frames narrower than min_px are left out


def test_py_spy_failing_says_why():
    if not PY_SPY.exists():
        pytest.skip("py-spy is not installed")
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(RuntimeError, match=f"py-spy could not sample process {sleeper.pid}"):
            profile(sleeper.pid, 1)
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.server
@pytest.mark.parametrize("target", ["django", "fastapi"])
def test_py_spy_samples_a_live_server(target: str, tmp_path: Path):
    """py-spy from the venv against daphne and uvicorn under a little load: samples in the layers."""
    if not PY_SPY.exists():
        if os.environ.get("CI"):
            pytest.fail(f"py-spy is missing at {PY_SPY}: it is in requirements.lock")
        pytest.skip(f"py-spy is not installed at {PY_SPY}")
    (server,) = serverproc.start(TARGETS[target], tmp_path)
    try:
        try:
            prof, before, after = profile_under_load(server, rate=10.0, seconds=2)
        except RuntimeError as e:
            if "ermission" in str(e) and not os.environ.get("CI"):
                pytest.skip(f"py-spy may not ptrace here: {e}")
            raise
    finally:
        server.stop()
    layers = attribute(prof.folded)
    assert prof.samples > 0 and prof.cpu_seconds > 0 and prof.duration_s == 2.0, prof.basis()
    assert layers["server"] > 0 and layers["server"] + layers["framework"] + layers["event loop"] > prof.samples / 2
    assert after["deliveries"] > before["deliveries"]
