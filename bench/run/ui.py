"""`make ui`: start the targets, then Locust's web UI on the chat user; Ctrl-C stops everything.

The targets' names and URLs go to Locust (CHAT_TARGETS, bench/locustfile.py), so the form's
"Custom parameters" offer the running targets as a dropdown (Chat target) beside the chat
options; the chosen target's servers are what the members connect to. During a run the "Chat"
tab (bench/load/live.py) charts deliveries/s, loss by cause and delivery latency live, with the
ledger's totals. The form starts with two full rooms (users a multiple of the room size: a room
chats only once it is full).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import ROOT, locust_command
from bench.run import machine, redisctl, serverproc
from bench.targets import LOCAL_TARGETS, TARGETS

ROOM_SIZE = 10
USERS = 2 * ROOM_SIZE
LOCUST_STOP_S = 15.0  # for Locust to stop its users and write what it measured after Ctrl-C


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
        urls: dict[str, list[str]] = {}
        for name in args.targets.split(","):
            if TARGETS[name].needs_redis:
                redisctl.check(redisctl.redis_url())  # says how to get a Redis when none answers
            servers = serverproc.start(TARGETS[name], logs)
            started += servers
            urls[name] = [s.base_url for s in servers]
            print(f"ui: {name:<13} {', '.join(urls[name])}", flush=True)
        print(f"ui: Locust at http://127.0.0.1:{args.web_port}  (choose the target under Custom parameters; "
              f"the Chat tab shows the run live); server logs in {logs}", flush=True)
        command = locust_command("--web-host", "127.0.0.1", "--web-port", str(args.web_port),
                                 "--host", next(iter(urls.values()))[0], "--users", str(USERS),
                                 "--spawn-rate", str(USERS), "--chat-room-size", str(ROOM_SIZE))
        return run_locust(command, {**os.environ, "CHAT_TARGETS": json.dumps(urls)})
    except KeyboardInterrupt:
        return 0
    except redisctl.RedisUnavailable as e:
        print(f"ui: {e}", file=sys.stderr)
        return 2
    finally:
        for s in started:
            s.stop()


def run_locust(command: list[str], env: dict[str, str]) -> int:
    """Locust until it ends; on Ctrl-C or SIGTERM it gets SIGTERM and time to stop its users and
    write its results before the servers go."""
    locust = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        return locust.wait()
    except KeyboardInterrupt:
        locust.terminate()
        try:
            locust.wait(LOCUST_STOP_S)
        except subprocess.TimeoutExpired:
            locust.kill()
            locust.wait()
        return 0


if __name__ == "__main__":
    sys.exit(main())
