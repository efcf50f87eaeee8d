"""The figures two runs of the bench are compared on, per target, scenario and step, each folded
over its repeats (median and range) so that a difference can be judged against the spread."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from bench.record import Results, Run, delivered_rate, edge_runs, measures_capacity, ramp_edge, searched, searches_of
from bench.report.repeats import Stat, capacity_stat, differ


@dataclass(frozen=True)
class Metric:
    name: str  # as thresholds name it: "loss", "p95", ...
    title: str
    unit: str
    higher_is_better: bool
    value: Callable[[Run], float | None]


METRICS = {m.name: m for m in [
    Metric("dps", "deliveries/s", "/s", True, delivered_rate),  # None where the physics check refuses the rate
    Metric("p95", "RTT p95", "ms", False, lambda r: r.rtt_ms.p95),
    Metric("loss", "loss", "%", False, lambda r: r.ledger.loss_pct),
    Metric("cost", "server CPU per delivery", "µs", False, lambda r: r.server.cpu_us_per_delivery),
]}
MACHINE_SHARE = 0.10  # capacity × cost per delivery within this of each other: the same load on the cores
CAPACITY = Metric("capacity", "capacity at the SLO", "deliveries/s", True, lambda r: r.deliveries_per_s)


def number(x: float) -> str:
    """A figure as the tables print it: thousands grouped, small ones to four significant figures."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def fold(runs: list[Run], metric: Metric) -> Stat | None:
    """Median and range over the runs that finished (or, when none did, over what the failed ones kept)."""
    usable = [r for r in runs if r.ok] or runs
    values = [v for r in usable if (v := metric.value(r)) is not None]
    if not values:
        return None
    return Stat(statistics.median(values), min(values), max(values), len(values))


def capacity(data: Results, scenario: str, target: str) -> Stat:
    """Deliveries/s at the SLO: the searched capacity's highest held pass (or its indicative edge), else (a
    stepped ramp, an older results file) the largest step before the first one over the SLO; 0 when even the
    first failed."""
    if found := capacity_stat(data, target, scenario):
        return found
    return fold(ramp_edge(data, scenario, target).held, CAPACITY) or Stat(0.0, 0.0, 0.0, 1)


def capacity_figure(data: Results, target: str, scenario: str) -> Figure:
    """The capacity, with what explains a move between two results: the server CPU per delivery at its edge
    (capacity × cost is the share of the servers' cores a load takes), and whether it was held."""
    found = searched(data, target, scenario)
    cost = fold(edge_runs(data, found), METRICS["cost"]) if found else None
    runs = data.runs_of(scenario, target) if found else []
    noisy = [r for r in runs if r.noise.noisy]
    speeds = [r.noise.server_cpu_speed_pct for r in noisy if r.noise.server_cpu_speed_pct is not None]
    searches = len(searches_of(data, target, scenario))
    of = f"its {searches} searches'" if searches > 1 else "its search's"
    note = f"{len(noisy)} of {of} {len(runs)} runs noisy" + \
        (f" (the servers' CPU down to {min(speeds):.0f}% of its speed)" if speeds else "") if noisy else ""
    edge_speeds = [s for r in edge_runs(data, found) if (s := r.noise.server_cpu_speed_pct)] if found else []
    return Figure(target, scenario, "", CAPACITY, capacity(data, scenario, target),
                  edge_cost_us=cost.median if cost else None, held=found.held if found else None, noisy=note,
                  code=data.environment.code,
                  edge_speed_pct=statistics.median(edge_speeds) if edge_speeds else None,
                  ceiling_pct=runs[0].params.cpu_ceiling_pct if runs else None)


@dataclass(frozen=True)
class Figure:
    """One figure of one group of runs (target, scenario, step), e.g. fastapi steady p95."""

    target: str
    scenario: str
    step: str
    metric: Metric
    stat: Stat
    edge_cost_us: float | None = None  # a searched capacity's server CPU per delivery at its edge
    held: bool | None = None  # a searched capacity: held for the sustained window (None: not searched)
    noisy: str = ""  # a searched capacity: how many of its search's runs had their servers' CPU slow or taken
    code: str | None = None  # the code measured (Environment.code): a move across two commits may be the code's
    edge_speed_pct: float | None = None  # a searched capacity: its servers' CPU speed in the held pass (% of full)
    ceiling_pct: float | None = None  # a searched capacity: the CPU ceiling its search ran under (% of the cores)

    @property
    def at_full_speed(self) -> float | None:
        """A searched capacity scaled to the servers' CPU at full speed (÷ the speed its held pass ran at): an
        estimate beside the capacity, never the capacity, only as good as the speed probe (bench/run/machine.py
        CpuSpeed: full speed is the bench's own fastest quartile, so it moves from one bench to the next)."""
        return self.stat.median * 100 / self.edge_speed_pct if self.edge_speed_pct else None


def figures(data: Results) -> dict[tuple[str, str, str, str], Figure]:
    """Every figure of a results file, keyed (target, scenario, step, metric name); the capacity of each
    scenario with an SLO is one more, at step "" under the metric "capacity"."""
    out = {}
    for target in dict.fromkeys(r.target for r in data.runs):
        for scenario in dict.fromkeys(r.scenario for r in data.runs_of(target=target)):
            for step in data.steps_of(scenario, target):
                runs = data.runs_of(scenario, target, step)
                for metric in METRICS.values():
                    if stat := fold(runs, metric):
                        out[target, scenario, step, metric.name] = Figure(target, scenario, step, metric, stat)
            if measures_capacity(data.runs_of(scenario, target)[0]):
                out[target, scenario, "", "capacity"] = capacity_figure(data, target, scenario)
    return out


@dataclass(frozen=True)
class Change:
    """A figure in the old and the new run: by how much it moved, and whether beyond the spread."""

    old: Figure
    new: Figure

    @property
    def pct(self) -> float | None:
        a, b = self.old.stat.median, self.new.stat.median
        return None if a == 0 else 100.0 * (b - a) / abs(a)

    @property
    def full_speed_pct(self) -> float | None:
        """How far the capacity moved once each is scaled to its servers' full CPU speed (Figure.at_full_speed)."""
        a, b = self.old.at_full_speed, self.new.at_full_speed
        return 100.0 * (b - a) / a if a and b is not None else None

    @property
    def not_significant(self) -> str | None:
        """The rule that calls the difference noise (report.repeats.differ), or None when it is real."""
        return differ(self.old.stat, self.new.stat)

    @property
    def worse(self) -> bool:
        a, b = self.old.stat.median, self.new.stat.median
        return b < a if self.new.metric.higher_is_better else b > a

    @property
    def why(self) -> str:
        """For a capacity: which was not held, and for a move beyond the spread, whether the servers' cost per
        delivery at the edge moved with it (capacity × cost, the share of their cores the held load took,
        the same at both edges: the machine ran at another speed) or not (the search held a different share:
        its bracket); "" otherwise."""
        old, new = self.old, self.new
        bits = [f"{name} not held" for name, f in (("old", old), ("new", new)) if f.held is False]
        if old.ceiling_pct != new.ceiling_pct and old.ceiling_pct and new.ceiling_pct:
            bits.append(f"searched with the servers' CPU under {old.ceiling_pct:g}% → {new.ceiling_pct:g}% of "
                        "their cores")
        if self.not_significant is None:  # a move: was either search run on a machine that was not itself?
            bits += [f"{name}: {f.noisy}" for name, f in (("old", old), ("new", new)) if f.noisy]
            if (at_full := self.full_speed_pct) is not None and old.edge_speed_pct != new.edge_speed_pct:
                bits.append(f"the held pass ran at {old.edge_speed_pct:.0f}% → {new.edge_speed_pct:.0f}% of the "
                            f"servers' full CPU speed: at full speed {at_full:+.0f}%")
        if self.not_significant is None and old.edge_cost_us and new.edge_cost_us and old.stat.median:
            share = (new.stat.median * new.edge_cost_us) / (old.stat.median * old.edge_cost_us)
            cost = new.edge_cost_us / old.edge_cost_us
            moved = f"µs per delivery at the edge {number(old.edge_cost_us)} → {number(new.edge_cost_us)}"
            other = f"a share of the servers' cores ×{share:.2f} the old: the search held a different load"
            if abs(share - 1) <= MACHINE_SHARE:
                bits.append(f"{moved}, the same share of the servers' cores at both edges (×{share:.2f}): "
                            f"{what_moved(old.code, new.code)}")
            elif abs(cost - 1) <= MACHINE_SHARE:
                bits.append(f"{moved}, {other} (see its bracket)")
            else:  # both: the cost moved, and the load held took another share of the cores at it
                bits.append(f"{moved} (×{cost:.2f}: {what_moved(old.code, new.code)}), and {other} too (see its "
                            "bracket)")
        return "; ".join(bits)

    @property
    def verdict(self) -> str:
        if self.old.stat.median == self.new.stat.median:
            text = "same"
        elif rule := self.not_significant:
            text = f"not significant ({rule})"
        else:
            text = "worse" if self.worse else "better"
        return f"{text}; {self.why}" if self.why else text


def what_moved(old: str | None, new: str | None) -> str:
    """What moved a cost per delivery at the same share of the cores: the machine's speed, when both benches
    measured the same committed code; else the code may have too."""
    if old and new and old != new:
        return f"the code changed ({old} → {new}), or the machine's speed moved"
    if old and old == new and not old.endswith("+changes"):
        return "the machine's speed moved, not the stack"
    return "the machine's speed moved, or the code (not recorded as one commit in both)"


def changes(old: Results, new: Results) -> list[Change]:
    """Every figure both results hold, in the new run's order."""
    before = figures(old)
    return [Change(before[key], fig) for key, fig in figures(new).items() if key in before]
