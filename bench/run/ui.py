"""`make ui`: start the targets, then Locust's web UI with the chat user; Ctrl-C stops everything.

In the UI, set Host to one of the printed URLs and the chat options (room size, rate,
size, kind) under "Custom parameters"; the live deliveries, loss and latency of the run
are at /chat beside Locust's own statistics.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import ROOT, locust_command
from bench.run import machine, redisctl, serverproc
from bench.targets import LOCAL_TARGETS, TARGETS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run.ui", description=__doc__.splitlines()[0])
    p.add_argument("--targets", default=",".join(LOCAL_TARGETS))
    p.add_argument("--web-port", type=int, default=8089)
    args = p.parse_args(argv)
    machine.raise_fd_limit()
    machine.stop_on_sigterm()
    started = []
    try:
        logs = Path(tempfile.mkdtemp(prefix="chat-ui-"))
        for name in args.targets.split(","):
            if TARGETS[name].needs_redis:
                redisctl.check(redisctl.redis_url())  # says how to get a Redis when none answers
            servers = serverproc.start(TARGETS[name], logs)
            started += servers
            print(f"ui: {name:<13} {', '.join(s.base_url for s in servers)}", flush=True)
        first = started[0].base_url
        print(f"ui: Locust at http://127.0.0.1:{args.web_port}  (live chat view: /chat); server logs in {logs}",
              flush=True)
        return subprocess.call(locust_command("--web-host", "127.0.0.1", "--web-port", str(args.web_port),
                                              "--host", first), cwd=ROOT)
    except KeyboardInterrupt:
        return 0
    except redisctl.RedisUnavailable as e:
        print(f"ui: {e}", file=sys.stderr)
        return 2
    finally:
        for s in started:
            s.stop()


if __name__ == "__main__":
    sys.exit(main())
