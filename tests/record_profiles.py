"""Record the profiles tests/test_profiler.py reads: `python -m tests.record_profiles` profiles daphne
(`django`) and uvicorn (`fastapi`) under a little load with bench.run.profiler, and writes each one's
folded stacks (tests/data/profile-TARGET.raw) and what /stats measured meanwhile (.json)."""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from pathlib import Path

from bench.run import serverproc
from bench.run.profiler import Profile, profile
from bench.targets import TARGETS
from tests.paced_load import paced_load

DATA = Path(__file__).parent / "data"
ROOMS, ROOM_SIZE = 2, 5
RATES = {"django": 10.0, "fastapi": 60.0}  # msg/s per member: 500 and 3,000 deliveries/s, under capacity here


def profile_under_load(server: serverproc.ServerProcess, rate: float, seconds: int) -> tuple[Profile, dict, dict]:
    """Profile `server` for `seconds` while the paced load runs around it; /stats before and after."""
    got: dict = {}

    def sample() -> None:
        got["before"] = server.stats()
        got["profile"] = profile(server.pid, seconds)
        got["after"] = server.stats()

    sampler = threading.Thread(target=sample)
    asyncio.run(_load_around(server, rate, seconds, sampler))
    return got["profile"], got["before"], got["after"]


async def _load_around(server: serverproc.ServerProcess, rate: float, seconds: int,
                       sampler: threading.Thread) -> None:
    load = asyncio.create_task(paced_load(server.ws_url, rooms=ROOMS, room_size=ROOM_SIZE, rate=rate, warmup=0.5,
                                          window=seconds + 1.0, drain=0.5, tag="profiled"))
    await asyncio.sleep(0.7)  # connected and warm
    sampler.start()
    await asyncio.to_thread(sampler.join)
    await load


def main() -> None:
    for name, rate in RATES.items():
        with tempfile.TemporaryDirectory() as logs:
            (server,) = serverproc.start(TARGETS[name], Path(logs))
            try:
                prof, before, after = profile_under_load(server, rate, 4)
            finally:
                server.stop()
        (DATA / f"profile-{name}.raw").write_text("".join(f"{s} {n}\n" for s, n in sorted(prof.folded.items())))
        measured = {"target": name, "server": before["server"], "rate": prof.rate, "duration_s": prof.duration_s,
                    "errors": prof.errors, "deliveries": after["deliveries"] - before["deliveries"],
                    "cpu_seconds": round(after["cpu_seconds"] - before["cpu_seconds"], 3),
                    "load": f"{ROOMS} rooms of {ROOM_SIZE}, {rate:g} msg/s per member"}
        (DATA / f"profile-{name}.json").write_text(json.dumps(measured, indent=1) + "\n")
        print(name, measured, f"{prof.samples} samples")


if __name__ == "__main__":
    main()
