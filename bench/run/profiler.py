"""Where a server's CPU goes, by layer: py-spy samples the running server's stacks (no change to the
server), each sample goes to one layer, and the server CPU per delivery the run measured is split
over the layers in proportion to their samples.

Cost. `py-spy record --nonblocking` reads the interpreter's memory without stopping it. Measured here
(fastapi at 2,000 deliveries/s, 200 samples/s, 3 s windows): the server's CPU per delivery rose ~10%,
within this machine's run-to-run noise, against ~45% when py-spy stops the process for every sample;
py-spy itself used ~0.1 core, so `cpus` should keep it off the servers' CPUs. What not stopping costs
in accuracy: a stack read while it changes is dropped (py-spy's `errors`, reported) or cut short at
its outer end, which the innermost-frame rule below does not mind.

What a sample is. py-spy's default keeps every thread the OS shows running, but a thread woken from
epoll and still waiting in the run queue for a CPU shows running too: on this shared 2-core machine a
daphne at 30% CPU gave 2.8 samples per tick of CPU time, most of them parked in the selector's select,
and uvicorn 5.8, all of them in asyncio's Runner.run, under which uvloop waits and works alike in C.
So the profile keeps only the thread holding the GIL (`--gil`): a thread waiting for a socket, a lock
or a job has let the GIL go, whatever its OS state, and in asyncio and uvloop alike. The price: CPU
spent with the GIL released (the kernel's side of a socket read or write, libuv's own reads) is not
seen, and the split spreads it over the layers in proportion. `Profile.coverage` (samples per tick
of CPU time; uvicorn 0.94 here) shows how much of the CPU the samples saw, or, above 1, how long the
GIL holder waited for a CPU. A sample still caught at a wait (WAITS: a selector's select, a thread
pool's worker taking its next job, a threading wait) is IDLE: reported, given no share of the CPU.
The scale always comes from the measured CPU seconds, never from the sample count.

Layers. A sample is charged to the layer that asked for the work: its innermost frame whose top-level
package is in LAYERS, where frames of other packages (the stdlib's copy, json, threading, ...) are
passed over, so their cost goes to the layer that called them. The event loop is the one exception: a
frame of asyncio (or uvloop, selectors) is passed over too when a known frame the loop itself called
sits above it, so the loop's primitives bought by Channels (asyncio.Queue, create_task, the executor
hand-off of asgiref's sync_to_async) are the framework's, and the loop keeps what nobody above it asked
for: its scheduling, its select, and under uvloop its C work (shown as asyncio's Runner.run). What
calls the loop from outside (uvicorn.run, daphne's reactor start, the app's serve.py) is not counted
as asking. A sample with no known frame at all (a thread-pool worker's own bookkeeping) is OTHER.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.record import ProfileBasis

PY_SPY = Path(sys.executable).with_name("py-spy")  # installed into the venv from PyPI (requirements.lock)
RATE = 200  # samples/s: ~1,000 from 5 s of a busy server, each layer's share to within ~±1.5 points
SPLIT_TOLERANCE = 1e-9  # relative: the layers' µs add up to the measured µs per delivery but for rounding

LOOP = "event loop"
LAYERS: dict[str, tuple[str, ...]] = {
    "server": ("daphne", "twisted", "autobahn", "txaio", "uvicorn", "websockets", "httptools", "h11", "wsproto"),
    "framework": ("channels", "asgiref", "django", "starlette", "fastapi", "anyio"),
    "app": ("django_chat", "fastapi_chat", "reference_chat"),
    LOOP: ("asyncio", "uvloop", "selectors"),
    "redis client": ("redis", "channels_redis", "msgpack"),
    "database client": ("asyncpg", "psycopg", "sqlalchemy", "aiosqlite", "sqlite3"),
}
OTHER = "stdlib/other"
IDLE = "idle"
LAYER_ORDER = [*LAYERS, OTHER, IDLE]
WAITS = {("selectors.py", "select"), ("concurrent/futures/thread.py", "_worker"), ("threading.py", "wait")}
PACKAGE_LAYER = {package: layer for layer, packages in LAYERS.items() for package in packages}
FRAME = re.compile(r"(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


@dataclass
class Profile:
    """What py-spy sampled of some server processes: folded stacks ("outer;...;inner" -> samples)."""

    folded: dict[str, int] = field(default_factory=dict)
    rate: int = RATE
    duration_s: float = 0.0
    errors: int = 0  # samples py-spy could not read (a stack that changed under it)
    cpu_seconds: float = 0.0  # the processes' CPU during the sampling, from the OS

    @property
    def samples(self) -> int:
        return sum(self.folded.values())

    @property
    def coverage(self) -> float | None:
        """Busy (not IDLE) samples per sampling tick of CPU time: ~1 when the samples saw all the CPU, below 1
        when some went by with the GIL released (or reads failed), above 1 when the GIL holder also waited
        for a CPU (see the module's note on what a sample is)."""
        busy = self.samples - attribute(self.folded)[IDLE]
        return busy / (self.cpu_seconds * self.rate) if self.cpu_seconds else None

    def basis(self) -> ProfileBasis:
        """What a split of this profile rests on, for the report to print beside it: the shares of samples
        py-spy could not read, that were idle (left out of the split) and that no known layer claimed."""
        tried = self.samples + self.errors
        layers = attribute(self.folded)
        pct = lambda n: 100 * n / self.samples if self.samples else None  # noqa: E731
        return ProfileBasis(samples=self.samples, errors_pct=100 * self.errors / tried if tried else None,
                            idle_pct=pct(layers[IDLE]), other_pct=pct(layers[OTHER]), coverage=self.coverage,
                            rate=self.rate, duration_s=self.duration_s)


def parse_raw(text: str) -> dict[str, int]:
    """py-spy's raw format (Brendan Gregg's folded stacks): one "frame;frame;... count" per line."""
    folded: dict[str, int] = {}
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            folded[stack] = folded.get(stack, 0) + int(count)
    return folded


def package_of(frame: str) -> str:
    """The top-level package of a py-spy frame, "function (package/module.py:line)" → "package"."""
    match = FRAME.match(frame)
    path = match["file"] if match else ""
    return path.split("/", 1)[0].removesuffix(".py")


def is_wait(frame: str) -> bool:
    """A frame (innermost) in which a thread blocks: see WAITS."""
    match = FRAME.match(frame)
    return match is not None and any(match["file"] == file and match["function"].rpartition(".")[2] == function
                                     for file, function in WAITS)


def layer_of(stack: str) -> str:
    """IDLE if the innermost frame is a wait, else the layer that asked for the work (the module's docstring
    gives the rule)."""
    frames = stack.split(";")
    if is_wait(frames[-1]):
        return IDLE
    layers = [PACKAGE_LAYER.get(package_of(frame)) for frame in frames]
    if LOOP in layers:
        asked = [layer for layer in layers[layers.index(LOOP):] if layer and layer != LOOP]
        return asked[-1] if asked else LOOP
    known = [layer for layer in layers if layer]
    return known[-1] if known else OTHER


def attribute(folded: dict[str, int]) -> dict[str, int]:
    """Samples per layer, every layer of LAYER_ORDER present."""
    layers = dict.fromkeys(LAYER_ORDER, 0)
    for stack, count in folded.items():
        layers[layer_of(stack)] += count
    return layers


def per_delivery_us(layer_samples: dict[str, int], cpu_seconds: float, deliveries: int) -> dict[str, float]:
    """The measured server CPU µs per delivery, split over the layers (IDLE left out) in proportion to their
    samples: the parts add up to 1e6 × cpu_seconds / deliveries (within SPLIT_TOLERANCE). Empty when there is
    nothing to split (no busy samples or no deliveries)."""
    busy = {layer: n for layer, n in layer_samples.items() if layer != IDLE}
    total_samples = sum(busy.values())
    if not total_samples or not deliveries:
        return {}
    total_us = 1e6 * cpu_seconds / deliveries
    return {layer: total_us * n / total_samples for layer, n in busy.items()}


def _cpu_seconds(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def profile(pids: int | Sequence[int], seconds: int, *, rate: int = RATE, cpus: set[int] | None = None) -> Profile:
    """Sample the processes `pids` for `seconds` (whole seconds: py-spy's unit), one py-spy each, all at once,
    py-spy pinned to `cpus`; their stacks are merged. Raises RuntimeError with py-spy's words if it fails
    (py-spy needs ptrace rights over the server: root, or the same user with ptrace_scope 0)."""
    if not PY_SPY.exists():
        raise RuntimeError(f"py-spy is not installed at {PY_SPY} (`make setup` installs it: requirements.lock)")
    pids = [pids] if isinstance(pids, int) else list(pids)
    results: dict[int, tuple[subprocess.CompletedProcess, str]] = {}

    def sample(pid: int, out: Path) -> None:
        done = subprocess.run(
            [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate),
             "--format", "raw", "--function", "--nonblocking", "--gil", "--output", str(out)],
            capture_output=True, text=True, timeout=seconds + 30,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        results[pid] = (done, out.read_text() if out.exists() else "")

    with tempfile.TemporaryDirectory(prefix="py-spy-") as tmp:
        cpu_before = _cpu_seconds(pids)
        threads = [threading.Thread(target=sample, args=(pid, Path(tmp) / f"{pid}.raw")) for pid in pids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu = _cpu_seconds(pids) - cpu_before
    merged = Profile(rate=rate, duration_s=float(seconds), cpu_seconds=cpu)
    for pid, (done, raw) in results.items():
        said = done.stdout + done.stderr
        if done.returncode != 0:
            raise RuntimeError(f"py-spy could not sample process {pid} (exit {done.returncode}): {said.strip()}")
        for stack, n in parse_raw(raw).items():
            merged.folded[stack] = merged.folded.get(stack, 0) + n
        errors = re.search(r"Errors: (\d+)", said)
        merged.errors += int(errors[1]) if errors else 0
    return merged


# --- the flame graph: folded stacks as a static SVG, inline in the report (no script, no network) ---

COLOURS = {"server": "#e8743b", "framework": "#945ecf", "app": "#13a4b4", "event loop": "#6c8893",
           "redis client": "#d64550", "database client": "#3b7dd8", OTHER: "#b5b5b5", IDLE: "#e4e4e4"}
ROW_PX = 17
CHAR_PX = 6.6  # the average width of one character at the labels' 11 px


def _tree(folded: dict[str, int]) -> dict:
    root: dict = {"name": "all", "value": 0, "children": {}}
    for stack, count in folded.items():
        root["value"] += count
        node = root
        for frame in stack.split(";"):
            node = node["children"].setdefault(frame, {"name": frame, "value": 0, "children": {}})
            node["value"] += count
    return root


def flame_svg(folded: dict[str, int], width: int = 960, min_px: float = 1.0, max_depth: int = 48,
              title: str = "") -> str:
    """An icicle graph (callers above callees; width = samples) as one <svg> element: frames narrower than
    `min_px` are left out, each frame's colour is its layer, and hovering shows its full name and share
    (SVG <title>, shown by the browser itself). py-spy's own flamegraph output is an SVG too, but it needs
    its own py-spy run (one run records one format) and scripts to be read; this is drawn from the same
    samples as the attribution."""
    root = _tree(folded)
    total = root["value"] or 1
    rects: list[str] = []
    depth_seen = 0

    def draw(node: dict, x: float, depth: int) -> None:
        nonlocal depth_seen
        w = width * node["value"] / total
        if w < min_px or depth > max_depth:
            return
        depth_seen = max(depth_seen, depth)
        name = node["name"]
        match = FRAME.match(name)
        function = match["function"] if match else name
        layer = (IDLE if not node["children"] and is_wait(name) else PACKAGE_LAYER.get(package_of(name), OTHER)) \
            if depth else OTHER
        y = ROW_PX * (depth + 1)
        label = function[: max(0, int((w - 6) / CHAR_PX))]
        share = f"{node['value']:,} samples, {100 * node['value'] / total:.1f}%"
        rects.append(
            f'<g><title>{html.escape(name)}: {share}</title>'
            f'<rect x="{x:.1f}" y="{y}" width="{max(w - 0.5, 0.5):.1f}" height="{ROW_PX - 1}" '
            f'fill="{COLOURS[layer]}" rx="1"/>'
            + (f'<text x="{x + 3:.1f}" y="{y + ROW_PX - 5}">{html.escape(label)}</text>' if len(label) > 2 else "")
            + "</g>")
        for child in sorted(node["children"].values(), key=lambda c: -c["value"]):
            draw(child, x, depth + 1)
            x += width * child["value"] / total

    draw(root, 0.0, 0)
    legend = "".join(f'<rect x="{8 + i * 130}" y="3" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{22 + i * 130}" y="12">{html.escape(layer)}</text>'
                     for i, (layer, colour) in enumerate(COLOURS.items()))
    height = ROW_PX * (depth_seen + 2) + 4
    heading = f'<title>{html.escape(title)}</title>' if title else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="11" role="img">{heading}'
            f'{legend}{"".join(rects)}</svg>')

