"""What one load-generator process measured, in a form that merges across Locust workers.

Histograms are HDR (microseconds). Counters are ints keyed by a name, or by a (family, detail)
pair for what comes per close code or reader kind (("closed", 1006), ("lost_sender_closed", 1009)):
structure, not strings. `take` and `merge` are the one place that turns them into JSON for Locust's
`report_to_master` message and back.
"""

from __future__ import annotations

from collections import Counter

from hdrh.histogram import HdrHistogram

CounterKey = str | tuple[str, int | str]  # a counter's name, or (family, close code or reader kind)

LATENCY_MAX_US = 600_000_000  # 10 minutes: nothing a run measures is slower
# the sender's round trip through the broadcast; each delivery; each handshake (connect latency);
# app mode: from a joining member's handshake until its history had arrived
HISTOGRAMS = ("rtt", "latency", "connect", "history")


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, LATENCY_MAX_US, 3)


class Tally:
    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.histograms = {name: new_histogram() for name in HISTOGRAMS}
        self.counters: Counter[CounterKey] = Counter()
        self.timeline: Counter[str] = Counter()  # whole second since the window opened -> deliveries arrived
        self.rtt_timeline: dict[str, list[int]] = {}  # the same seconds -> [sum of round trips µs, how many]
        self.window_ns = [0, 0]  # earliest window start and latest window end of any room
        self.settle_stats: dict | None = None  # the servers' /stats when this process's rooms settled

    def saw_window(self, start_ns: int, end_ns: int) -> None:
        first, last = self.window_ns
        self.window_ns = [min(first, start_ns) if first else start_ns, max(last, end_ns)]

    def add_rtts(self, second: int | str, total_us: int, count: int) -> None:
        at = self.rtt_timeline.setdefault(str(second), [0, 0])
        at[0] += total_us
        at[1] += count

    def record_latencies(self, name: str, values_us: list[int]) -> None:
        """Record a batch: one record_value per distinct value (exactly the same histogram as one
        call per message, at a twentieth of the cost; see bench/harness/loadgen.py)."""
        record = self.histograms[name].record_value
        for value, count in Counter(values_us).items():
            record(min(max(value, 1), LATENCY_MAX_US), count)

    def take(self) -> dict:
        """The delta since the last take, ready to send; this tally starts again from zero."""
        delta = {
            "histograms": {n: h.encode().decode() for n, h in self.histograms.items() if h.get_total_count()},
            "counters": {k: n for k, n in self.counters.items() if isinstance(k, str)},
            "by_family": _families(self.counters),
            "timeline": dict(self.timeline),
            "rtt_timeline": self.rtt_timeline,
            "window_ns": self.window_ns,
            "settle_stats": self.settle_stats,
        }
        self._reset()
        return delta

    def merge(self, delta: dict) -> None:
        for name, encoded in delta.get("histograms", {}).items():
            self.histograms[name].add(HdrHistogram.decode(encoded))
        self.counters.update(delta.get("counters", {}))
        for family, by_detail in delta.get("by_family", {}).items():
            self.counters.update({(family, _detail(d)): n for d, n in by_detail.items()})
        self.timeline.update(delta.get("timeline", {}))
        for second, (total_us, count) in delta.get("rtt_timeline", {}).items():
            self.add_rtts(second, total_us, count)
        if any(delta.get("window_ns", [0, 0])):
            self.saw_window(*delta["window_ns"])
        theirs = delta.get("settle_stats")
        if theirs and (self.settle_stats is None or theirs["at_ns"] > self.settle_stats["at_ns"]):
            self.settle_stats = theirs  # /stats is global: the latest reading covers every worker


def family(counters: Counter, name: str) -> dict[int | str, int]:
    """One family of counters, by detail: family(c, "closed") == {1006: 3}."""
    return {k[1]: n for k, n in sorted(counters.items(), key=str) if isinstance(k, tuple) and k[0] == name and n}


def _families(counters: Counter) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for key, n in counters.items():
        if isinstance(key, tuple):
            out.setdefault(key[0], {})[str(key[1])] = n
    return out


def _detail(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


def percentiles(hist: HdrHistogram) -> dict:
    """p50/p95/p99/max in milliseconds, or None when nothing was recorded."""
    if not hist.get_total_count():
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    return {
        "count": hist.get_total_count(),
        **{f"p{p}": hist.get_value_at_percentile(p) / 1000 for p in (50, 95, 99)},
        "max": hist.get_max_value() / 1000,
    }
