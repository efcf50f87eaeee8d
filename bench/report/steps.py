"""Scenarios and their steps in words: what a step overrides ("5 MiB messages", "room 100"), and a
scenario's parameters as one sentence."""

from __future__ import annotations

from collections.abc import Callable

from bench.record import Results, Run
from bench.report.numbers import fmt, plural
from bench.report.runs import param

STEP_WORDS: dict[str, Callable[[object], str]] = {
    "rate": lambda v: f"{fmt('step', v)} msg/s per member",
    "size": lambda v: f"{fmt('bytes', v)} messages",
    "kind": lambda v: f"{v} frames",
    "room_size": lambda v: f"rooms of {fmt('int', v)}",
    "users": lambda v: f"{fmt('int', v)} members",
    "nonreading": lambda v: f"{fmt('int', v)} per room never reading",
    "slow_readers": lambda v: f"{fmt('int', v)} per room reading slowly",
    "read_rate": lambda v: f"at {fmt('bytes', v)}/s",
    "burst": lambda v: f"bursts of {fmt('int', v)}",
    "burst_every": lambda v: f"every {fmt('step', v)} s mid-session" if v else "on connect",
    "churn": lambda v: f"{fmt('int', v)} per room leaving and rejoining",
    "churn_stay": lambda v: f"every {fmt('step', v)} s",
    "warmup": lambda v: f"after {fmt('step', v)} s of chat",
    "window": lambda v: f"a {fmt('step', v)} s window",
    "restart": lambda v: "servers just restarted" if v else "warm servers",
    "asgi_threads": lambda v: f"ASGI_THREADS={v}" if v else "daphne's default thread pool",
}
STEP_SHORT: dict[str, Callable[[object], str]] = {
    "rate": lambda v: f"{fmt('step', v)}/s", "size": lambda v: fmt("bytes", v), "kind": str,
    "room_size": lambda v: f"room {fmt('int', v)}", "users": lambda v: f"{fmt('int', v)} members",
    "nonreading": lambda v: "not reading" if v else "", "slow_readers": lambda v: "slow reader" if v else "",
    "read_rate": lambda v: f"{fmt('bytes', v)}/s", "burst": lambda v: f"burst {fmt('int', v)}",
    "burst_every": lambda v: f"every {fmt('step', v)} s" if v else "on connect",
    "churn": lambda v: f"churn {fmt('int', v)}", "churn_stay": lambda v: f"{fmt('step', v)} s stays",
    "warmup": lambda v: "", "window": lambda v: "",
    "restart": lambda v: "restarted" if v else "warm", "asgi_threads": lambda v: f"{v or 'default'} threads",
}


def _step_text(run: Run, words: dict) -> str:
    if run.step_params:
        return ", ".join(text for k, v in run.step_params.items()
                         if (text := words[k](v) if k in words else f"{k} {v}"))
    return run.step


def describe_step(run: Run) -> str:
    return _step_text(run, STEP_WORDS)


def short_step(run: Run) -> str:
    return _step_text(run, STEP_SHORT)


def where(run: Run) -> str:
    step = describe_step(run)
    return run.scenario + (f" at {step}" if step else "")


def sweep_axis(data: Results, scenario: str) -> str:
    """What a multi-step scenario varies, for its charts: "size", "room_size", or the load ("load")."""
    keys = {k for r in data.runs_of(scenario) for k in r.step_params}
    return "size" if "size" in keys else "room_size" if "room_size" in keys else "load"


def scenario_about(data: Results, scenario: str) -> str:
    """The scenario in words, from its runs' parameters (what the steps vary listed per step)."""
    runs = data.runs_of(scenario)
    if not runs:
        return ""
    p = lambda k: param(data, scenario, k)  # noqa: E731
    steps = [describe_step(data.runs_of(scenario, step=s)[0]) for s in data.steps_of(scenario)]
    varied = {k for r in runs for k in r.step_params} if len(steps) > 1 else set()
    part = lambda k, text: None if k in varied else text  # noqa: E731
    bits = [part("users", f"{fmt('int', p('users'))} members"),
            part("room_size", f"rooms of {fmt('int', p('room_size'))}"),
            part("rate", f"{fmt('step', p('rate'))} msg/s each"),
            part("size", f"{fmt('bytes', p('size'))} {p('kind')} messages") or f"{p('kind')} messages",
            part("nonreading", f"{fmt('int', p('nonreading'))} member(s) per room never reading")
            if p("nonreading") else None,
            part("slow_readers", f"{fmt('int', p('slow_readers'))} member(s) per room reading "
                 f"{fmt('bytes', p('read_rate'))}/s") if p("slow_readers") else None,
            part("burst", f"bursts of {fmt('int', p('burst'))} messages per member "
                 + (f"every {fmt('step', p('burst_every'))} s mid-session" if p("burst_every") else "on connect"))
            if p("burst") else None,
            part("churn", f"{fmt('int', p('churn'))} member(s) per room leaving and rejoining every "
                 f"{fmt('step', p('churn_stay'))} s") if p("churn") else None]
    reps = max((r.repeat for r in runs), default=0) + 1
    text = ", ".join(b for b in bits if b) + (f"; steps: {'; '.join(steps)}" if len(steps) > 1 else "")
    text += (f"; measured over {fmt('step', p('window'))} s (warm-up {fmt('step', p('warmup'))} s, drain "
             f"{fmt('step', p('drain'))} s), {plural(reps, 'repeat')}")
    if p("slo_p95_ms") is not None:
        text += f"; SLO: RTT p95 under {fmt('ms', p('slo_p95_ms'))} ms with no loss"
    return text
