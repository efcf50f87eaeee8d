"""Harness self-benchmark ("firehose"): how many deliveries one load-generator core can account for.

A raw-socket server process (pinned to its own core when there are two) completes the handshake,
then writes pre-formatted chunks of small binary messages with bench/message.py headers as fast as
the socket takes them. A client process pinned to one core reads them with bench.load.wsclient and does
the Locust user's own per-message accounting (bench/load/receiver.py). The result is deliveries per client CPU second,
so it stays meaningful when the server or CPU steal slows the wall clock rate.

That single connection, read in 256 KiB batches, is the client's best case. The Locust mode
measures the real thing: the firehose server accepts many members on any /ws/<room> path and
writes each connection its own stream of single small messages, round robin at a fixed total
rate (the way a chat server writes each delivery), from a few fake senders with per-connection
consistent sequence numbers; headless Locust (bench/locustfile.py, --chat-rate 0, pinned to the
other core) reads and accounts for them exactly as in a bench run. At such rates each read
returns one or two messages, so per-read costs, not per-message ones, decide the figure.
Deliveries of the window's messages (the results' timeline) per CPU second of the Locust process,
in slices of the window.

    python -m bench.harness [--seconds S] [--repeats N] [--json out.json]   # both figures
    python -m bench.harness --locust [--members 200] [--rate 64000] [--room-size 10] [--seconds 2 --repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from types import SimpleNamespace

import psutil
from hdrh.histogram import HdrHistogram

from bench import ROOT, locust_command
from bench.cpu import cpu_ticks, steal_pct
from bench.harness.firehose import pin, serve_members, serve_one, start_server
from bench.ledger import Member
from bench.load.receiver import Receiver
from bench.load.tally import Tally
from bench.load.wsclient import connect

MESSAGE_BYTES = 128
_FOREVER = 1 << 62
LOCUST_MEMBERS = 200
# Deliveries/s offered in all, one message per write: the ramp's 32 msg/s step (200 members, rooms of 10).
# Below the client's capacity on purpose: a client near saturation falls behind, reads grow and the
# per-read costs, the real ones at chat rates, are spread over many messages and hidden.
LOCUST_RATE = 64_000


def _client_main(core: int, conn: Connection, port: int, seconds: float, repeats: int) -> None:
    try:
        conn.send(_measure(core, port, seconds, repeats))
    except BaseException as exc:
        conn.send({"error": repr(exc)})
        raise


def _measure(core: int, port: int, seconds: float, repeats: int) -> list[dict]:
    pin(core)
    samples = []
    for _ in range(repeats):
        ws = connect(f"ws://127.0.0.1:{port}/firehose", timeout=5.0, recv_timeout=seconds)
        member, tally = Member(sender=0), Tally()  # sender 0 never sends: every message is a delivery
        receiver = Receiver(member, SimpleNamespace(window_start_ns=0, window_end_ns=_FOREVER), tally)
        recv, add, clock, now = ws.recv_batch, receiver.take, time.monotonic, time.time_ns
        steal0 = cpu_ticks({core})
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = clock()
        end = t0 + seconds
        try:
            while clock() < end:
                add(recv(), now())
        except TimeoutError:
            pass
        receiver.flush()
        t1 = clock()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        steal1 = cpu_ticks({core})
        ws.sock.close()
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        delivered = tally.counters["client_received"]
        samples.append({
            "deliveries": delivered, "wall_s": t1 - t0, "cpu_s": cpu,
            "per_core_s": delivered / cpu if cpu > 0 else 0.0,
            "per_wall_s": delivered / (t1 - t0),
            "gaps": sum(len(holes) for _, holes in member.book.by_sender.values()),
            "dups": member.book.duplicates, "foreign": tally.counters["foreign"],
            "p50_us": tally.histograms["latency"].get_value_at_percentile(50),
            "client_core_steal_pct": steal_pct(steal0, steal1),
        })
    return samples


def run_harness(seconds: float = 3.0, repeats: int = 5, message_bytes: int = MESSAGE_BYTES,
                locust: bool = True) -> dict:
    """Measure; takes about seconds * repeats plus ~0.5 s of process start-up, at most twice that.
    With `locust`, also the Locust mode (run_locust_harness) in 1 s slices, about half as long again
    plus ~4 s; its result is under "locust"."""
    client_core, server_core, cores = _cores()
    server, port = start_server(serve_one, (message_bytes,), server_core)
    client = None
    try:
        ctx = multiprocessing.get_context("spawn")
        client_end, client_conn = ctx.Pipe(duplex=False)
        steal0 = cpu_ticks()
        client = ctx.Process(target=_client_main, args=(client_core, client_conn, port, seconds, repeats),
                             daemon=True)
        client.start()
        if not client_end.poll(2 * seconds * repeats + 30):
            raise RuntimeError("harness client did not report in time")
        samples = client_end.recv()
        if isinstance(samples, dict):
            raise RuntimeError(f"harness client failed: {samples['error']}")
        steal1 = cpu_ticks()
    finally:
        for proc in (client, server):
            if proc is not None and proc.is_alive():
                proc.terminate()
                proc.join(5)
    rates = [s["per_core_s"] for s in samples]
    result = {
        "deliveries_per_core_s": {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
                                  "samples": rates},
        "deliveries_per_wall_s": statistics.median(s["per_wall_s"] for s in samples),
        "steal_pct": steal_pct(steal0, steal1),
        "message_bytes": message_bytes, "seconds": seconds, "repeats": repeats,
        "cores": {"client": client_core, "server": server_core, "available": len(cores)},
        "runs": samples,
    }
    if locust:
        result["locust"] = run_locust_harness(seconds=max(1.0, seconds / 2), repeats=repeats,
                                              message_bytes=message_bytes)
        result["summary"] = locust_summary(result["locust"]) + "; one connection in large batches (best case)"
    return result


def _cores() -> tuple[int, int, list[int]]:
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    return cores[0], cores[1 % len(cores)], cores


def run_locust_harness(members: int = LOCUST_MEMBERS, rate: float = LOCUST_RATE, seconds: float = 2.0,
                       repeats: int = 3, room_size: int = 10, message_bytes: int = MESSAGE_BYTES) -> dict:
    """The Locust user's real capacity: headless Locust with `members` members against the firehose,
    which offers `rate` deliveries/s in all. One Locust run whose window is `repeats` slices of
    `seconds` (whole seconds); per slice, the window's deliveries over the Locust process's CPU
    seconds. Takes the window plus ~4 s (Locust start-up, connects, warm-up, drain, shutdown)."""
    client_core, server_core, cores = _cores()
    step = max(1, round(seconds))
    window = step * repeats
    server, port = start_server(serve_members, (message_bytes, rate), server_core)
    try:
        with tempfile.TemporaryDirectory(prefix="harness-locust-") as tmp:
            results = Path(tmp) / "results.json"
            command = locust_command(
                "--headless",
                "--only-summary", "--loglevel", "WARNING", "-u", str(members), "-r", str(members * 100),
                "--run-time", f"{window + 20}s", "--stop-timeout", "0", "--host", f"http://127.0.0.1:{port}",
                "--chat-rate", "0", "--chat-room-size", str(room_size), "--chat-warmup", "0.5",
                "--chat-window", str(window), "--chat-drain", "0.5", "--chat-locust-events", "false",
                "--chat-room-prefix", "harness-", "--chat-results", str(results),
            )
            log_path = Path(tmp) / "locust.log"
            with open(log_path, "wb") as log:
                locust = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                          preexec_fn=lambda: pin(client_core))
            assert server.pid is not None  # a started process has one
            try:
                samples = _sample_cpu(locust, server.pid, client_core, deadline=time.monotonic() + window + 40)
            finally:
                if locust.poll() is None:
                    locust.kill()
                    locust.wait(5)
            if not results.exists():
                raise RuntimeError(f"harness Locust run exited with {locust.returncode} and wrote no results: "
                                   + log_path.read_text(errors="replace")[-2000:])
            data = json.loads(results.read_text())
    finally:
        server.terminate()
        server.join(5)
    start_ns, end_ns = data["window_ns"]
    # rooms fill a few ms apart, each with its own window: centre the slices on their spread
    origin = start_ns + max(0, end_ns - start_ns - window * 1_000_000_000) // 2
    timeline = {int(k): n for k, n in data["timeline"].items()}
    slices = []
    for k in range(repeats):
        t0, t1 = origin + k * step * 1_000_000_000, origin + (k + 1) * step * 1_000_000_000
        cpu = _at(samples, t1, 1) - _at(samples, t0, 1)
        steal = _at(samples, t1, 2) - _at(samples, t0, 2)
        total = _at(samples, t1, 3) - _at(samples, t0, 3)
        server_cpu = _at(samples, t1, 4) - _at(samples, t0, 4)
        delivered = sum(timeline.get(s, 0) for s in range(k * step, (k + 1) * step))
        slices.append({
            "deliveries": delivered, "cpu_s": cpu, "per_core_s": delivered / cpu if cpu > 0 else 0.0,
            "per_wall_s": delivered / step, "client_cpu_pct": 100 * cpu / step,
            "client_core_steal_pct": 100 * steal / total if total > 0 else 0.0,
            "server_cpu_pct": 100 * server_cpu / step,
        })
    rates = [s["per_core_s"] for s in slices]
    counters = data["counters"]
    return {
        "deliveries_per_core_s": {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
                                  "samples": rates},
        "deliveries_per_wall_s": statistics.median(s["per_wall_s"] for s in slices),
        "client_cpu_pct": statistics.median(s["client_cpu_pct"] for s in slices),
        "steal_pct": max(s["client_core_steal_pct"] for s in slices),
        # near 100 the firehose, not the client, set the pace: reads get bigger and the figure flatters
        "server_cpu_pct": statistics.median(s["server_cpu_pct"] for s in slices),
        "offered_per_s": rate, "members": members, "room_size": room_size, "message_bytes": message_bytes,
        "seconds": step, "repeats": repeats,
        "client_received": counters.get("client_received", 0), "foreign": counters.get("foreign", 0),
        "closes": data.get("by_family", {}).get("closed", {}),
        "connect_failed": counters.get("connect_failed", 0),
        "latency_p50_us": _p50(data, "latency"),
        "cores": {"client": client_core, "server": server_core, "available": len(cores)},
        "runs": slices,
        "command": " ".join(command),
    }


def _sample_cpu(proc: subprocess.Popen, server_pid: int, core: int,
                deadline: float) -> list[tuple[int, float, float, float, float]]:
    """(time_ns, CPU seconds of `proc`, steal and total CPU seconds of `core`, server CPU seconds) every 50 ms
    until `proc` exits."""
    samples: list[tuple[int, float, float, float, float]] = []
    ps, server = psutil.Process(proc.pid), psutil.Process(server_pid)
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            t, st = ps.cpu_times(), server.cpu_times()
        except psutil.Error:
            break
        samples.append((time.time_ns(), t.user + t.system, *cpu_ticks({core})[1:], st.user + st.system))
        time.sleep(0.05)
    return samples


def _at(samples: list[tuple], t_ns: int, i: int) -> float:
    """Field i of the samples, linearly interpolated at t_ns."""
    if not samples:
        return 0.0
    for (ta, *a), (tb, *b) in itertools.pairwise(samples):
        if ta <= t_ns <= tb:
            return a[i - 1] + (b[i - 1] - a[i - 1]) * (t_ns - ta) / (tb - ta) if tb > ta else a[i - 1]
    return samples[0][i] if t_ns < samples[0][0] else samples[-1][i]


def _p50(data: dict, name: str) -> int | None:
    encoded = data.get("histograms", {}).get(name)
    return HdrHistogram.decode(encoded).get_value_at_percentile(50) if encoded else None


def locust_summary(result: dict) -> str:
    d = result["deliveries_per_core_s"]
    return (f"Locust user, {result['members']} members at {result['deliveries_per_wall_s']:,.0f} deliveries/s "
            f"({result['message_bytes']} B, one message per write): {d['median']:,.0f} deliveries per client "
            f"CPU-second (median of {result['repeats']} x {result['seconds']} s, {d['min']:,.0f} .. {d['max']:,.0f}), "
            f"client {result['client_cpu_pct']:.0f}% cpu (firehose {result['server_cpu_pct']:.0f}%), "
            f"steal {result['steal_pct']:.1f}%")


def summary(result: dict) -> str:
    d = result["deliveries_per_core_s"]
    one = (f"harness: {d['median']:,.0f} deliveries/s per client core on one connection (median of "
           f"{result['repeats']}, {d['min']:,.0f} .. {d['max']:,.0f}), {result['deliveries_per_wall_s']:,.0f}/s wall, "
           f"steal {result['steal_pct']:.1f}%")
    return one + (f"; {locust_summary(result['locust'])}" if "locust" in result else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--message-bytes", type=int, default=MESSAGE_BYTES)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--locust", action="store_true", help="only the Locust mode: many members, real user")
    mode.add_argument("--one", action="store_true", help="only the single-connection best case")
    parser.add_argument("--members", type=int, default=LOCUST_MEMBERS, help="Locust mode: members")
    parser.add_argument("--rate", type=float, default=LOCUST_RATE, help="Locust mode: deliveries/s offered in all")
    parser.add_argument("--room-size", type=int, default=10, help="Locust mode: members per room")
    parser.add_argument("--json", help="also write the result as JSON to this path")
    args = parser.parse_args()
    if args.locust:
        result = run_locust_harness(args.members, args.rate, args.seconds, args.repeats, args.room_size,
                                    args.message_bytes)
        print(locust_summary(result))
    else:
        result = run_harness(args.seconds, args.repeats, args.message_bytes, locust=not args.one)
        print(summary(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
