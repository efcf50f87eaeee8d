"""The report: files written, every section present, figures taken from the data, labels exactly when
the data calls for them, and an HTML page that parses and loads nothing from the network."""

from __future__ import annotations

import json
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape

from bench.record import FORMAT_VERSION, Harness, Results, Run, Spread, stack_of
from bench.report import SECTIONS, print_summary, write_report
from bench.report.capacity import ramp_capacity
from bench.report.claims import FAILS, HOLDS, OTHER, UNMEASURED, UNSETTLED, claims
from bench.report.numbers import fmt
from bench.report.repeats import RULE_OVERLAP, RULE_SINGLE, fold
from bench.report.runs import COST, DPS

# a whole quick run (`python -m bench --quick`): steady, fanout, ramp, payload, slow, burst, idle against
# django, fastapi and fastapi-seed; each run's `samples` cut to its first and last ten (the report reads none).
# It is in format 1: the report reads it through Results.load's upgrade.
SAMPLE = Path(__file__).parent / "data" / "sample_results.json"
SCENARIOS = ("steady", "fanout", "ramp", "payload", "slow", "burst", "idle")
TARGETS = ("django", "fastapi", "fastapi-seed")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
MiB = 2**20


@pytest.fixture
def sample() -> Results:
    return Results.load(SAMPLE)


def make_run(target: str, scenario: str = "steady", rate: float = 2.0, repeat: int = 0, *,
             dps: float = 1000.0, rtt: tuple | None = (1.0, 2.0, 3.0, 4.0), loss: float = 0.0,
             cost: float | None = 10.0, rss: int = 100 * MiB, busiest: float | None = 20.0,
             bound: bool = False, status: str = "ok", failure: str | None = None,
             unexplained: int = 0, dropped: int = 0, slo: float | None = None, users: int = 100,
             noisy: bool = False) -> Run:
    """One run as bench.run.runner writes it (a step of `rate` msg/s per member), with the figures a test
    cares about."""
    expected = 10_000
    lost = int(expected * loss / 100)
    names = ("p50", "p95", "p99", "max")
    pcts = dict(zip(names, rtt, strict=True)) if rtt else dict.fromkeys(names)
    return Run.model_validate({
        "scenario": scenario, "target": target, "step": f"rate={rate:g}", "step_params": {"rate": rate},
        "repeat": repeat, "status": status, "failure": failure,
        "params": {"room_size": 10, "users": users, "rate": rate, "kind": "text", "size": 128, "warmup": 1.0,
                   "window": 4.0, "drain": 1.0, "repeats": 1, "slo_p95_ms": slo},
        "offered_send_rate": users * rate, "achieved_send_rate": users * rate if status == "ok" else 0.0,
        "deliveries_per_s": dps,
        "rtt_ms": {"count": 100 if rtt else 0, **pcts},
        "latency_ms": {"count": 1000 if rtt else 0, **pcts},
        "timeline": [dps] * 4 if status == "ok" else [],
        "ledger": {"expected": expected, "delivered": expected - lost - unexplained,
                   "dropped_by_server": {"backlog_full": dropped, "send_failed": 0},
                   "lost_with_close": [], "in_flight": 0, "unexplained": unexplained, "duplicates": 0,
                   "reordered": 0, "loss_pct": loss, "in_flight_pct": 0.0},
        "server": {"delta": None if status != "ok" else {
            "messages_in": 1000, "deliveries": expected - lost, "cpu_seconds": 0.1,
            "drops": {"backlog_full": dropped}, "close_codes": {1000: users}, "backlog": 0},
            "cpu_us_per_delivery": cost, "cpu_pct_mean": 20.0, "rss_before_bytes": rss,
            "rss_peak_bytes": rss},
        "client": {"busiest_process_cpu_pct": busiest, "client_bound": bound},
        "steal_pct": {"mean": 0.0, "max": 0.0}, "samples": [],
        "noise": {"other_on_server_cpus_pct": 25.0 if noisy else 0.5, "noisy": noisy},
    })


def make_data(runs: list[Run], status: str = "complete", targets: tuple = ("django", "fastapi")) -> Results:
    fanout = {"django": "channels", "fastapi": "queued", "fastapi-seed": "seed"}
    return Results.model_validate({
        "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:10:00+00:00",
        "status": status, "argv": ["python", "-m", "bench"],
        "environment": {"cpu_model": "Test CPU 9000", "cores": 4, "kernel": "6.0", "python": "3.11.7",
                        "packages": {"daphne": "4.2.3", "uvicorn": "0.54.0"},
                        "sysctls": {"net.core.rmem_max": "212992",
                                    "net.ipv4.tcp_rmem": "4096 131072 6291456"},
                        "cpu_plan": {"server_cpus": [0, 1], "client_cpus": [2, 3], "pinned": True,
                                     "note": "disjoint"}, "fd_limit": 1024},
        "targets": {t: {"stack": stack_of(Results(), t),
                        "about": f"about {t}", "launcher": [f"python -m {t}"],
                        "server_command": f"serve-{t} --fast",
                        "env": {}, "processes": 1, "server": "x 1.0", "fanout": fanout.get(t, "queued"),
                        "layer": "memory", "config": {"member_backlog": 100}} for t in targets},
        "runs": runs,
    })


def render(tmp_path: Path, data: Results) -> str:
    paths = write_report(data, tmp_path)
    return paths["html"].read_text()


class Checker(HTMLParser):
    """Fails on an end tag that does not close the innermost open element; collects resource URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href", "data", "action")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.add(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href")]

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def check_html(html: str) -> Checker:
    checker = Checker()
    checker.feed(html)
    checker.close()
    assert not checker.errors, checker.errors[:5]
    assert not checker.stack, f"left open: {checker.stack}"
    return checker


# ---------------------------------------------------------------- the real sample

def test_writes_html_markdown_and_json(sample, tmp_path):
    paths = write_report(sample, tmp_path)
    assert set(paths) == {"html", "md", "json"}
    assert Results.from_json(json.loads(paths["json"].read_text())) == sample
    html, md = paths["html"].read_text(), paths["md"].read_text()
    for title in SECTIONS:
        assert f"<h2>{escape(title)}</h2>" in html, title
    positions = [html.index(f"<h2>{escape(title)}</h2>") for title in SECTIONS]
    assert positions == sorted(positions), "sections out of order"
    assert "## Capacity at the SLO" in md and "## The seed's claims, tested" in md
    assert "| 7a |" in md


def test_figures_come_from_the_data(sample, tmp_path):
    html = render(tmp_path, sample)
    for target in ("django", "fastapi", "fastapi-seed"):
        runs = sample.runs_of("steady", target)
        dps = fmt("rate", fold(runs, DPS).median)
        cost = fmt("us", fold(runs, COST).median)
        assert f">{dps}<" in html, (target, dps)
        assert f">{cost}<" in html, (target, cost)
        assert escape(sample.targets[target].server_command) in html
    assert sample.environment.cpu_model in html
    assert sample.environment.sysctls["net.ipv4.tcp_rmem"] in html
    lossy = next(r for r in sample.runs if r.ledger.dropped_by_server["backlog_full"])
    assert fmt("int", lossy.ledger.dropped_by_server["backlog_full"]) in html


def test_html_parses_and_loads_nothing_from_the_network(sample, tmp_path):
    html = render(tmp_path, sample)
    checker = check_html(html)
    assert "script" not in checker.tags and "img" not in checker.tags and "link" not in checker.tags
    assert all(u.startswith("#") for u in checker.urls), checker.urls
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", html)
    assert "url(" not in html and "@import" not in html
    assert "<svg" in html


def test_percentiles_render_in_order(sample, tmp_path):
    html = render(tmp_path, sample)
    table = html[html.index('id="scenario-steady"'):html.index('id="scenario-fanout"')]
    for kind in ("RTT", "delivery latency"):
        labels = [f"{kind} {p} (ms)" for p in ("p50", "p95", "p99", "max")]
        at = [table.index(f"<th>{label}</th>") for label in labels]
        assert at == sorted(at)
        first_cells = [re.search(r'<td class="num[^"]*">([\d,.]+)', table[i:]).group(1) for i in at]
        values = [float(v.replace(",", "")) for v in first_cells]
        assert values == sorted(values), (kind, values)


def test_sample_has_no_client_bound_label_and_says_what_settles_each_claim(sample, tmp_path):
    html = render(tmp_path, sample)
    assert 'class="flag cb"' not in html and 'class="flag noisy"' not in html
    found = {cl.number: cl for cl in claims(sample)}
    verdicts = {n: cl.verdict for n, cl in found.items()}
    assert list(verdicts) == ["0", "1", "2", "3", "4", "5", "6", "7a", "7b", "7c", "7d", "8"]
    assert {verdicts[n] for n in ("0", "7c", "7d")} == {UNMEASURED}  # a format-1 relay run: no app targets
    assert all("--targets" in found[n].why or "Results.code" in found[n].why for n in ("0", "7c", "7d"))
    assert verdicts["2"] == HOLDS  # 1,000 idle members: every target far below a busy core
    assert verdicts["3"] == HOLDS and found["3"].by_stack == {"FastAPI": HOLDS, "Channels": FAILS}
    assert verdicts["4"] == OTHER  # the seed waited in TCP (room stalled), the layer dropped
    assert verdicts["5"] == FAILS  # lost deliveries in counted buckets; no kernel receive-queue drop
    assert verdicts["6"] == FAILS  # 1 and 5 MiB delivered; 16 MiB + 1 B refused with 1009
    assert verdicts["7a"] == HOLDS and verdicts["7b"] == FAILS and verdicts["8"] == FAILS


def test_print_summary_one_line_per_scenario_and_target(sample, capsys):
    print_summary(sample)
    lines = capsys.readouterr().out.strip().splitlines()
    pairs = [(s, t) for s in SCENARIOS for t in TARGETS]
    assert len(lines) == 1 + len(pairs)
    for (s, t), line in zip(pairs, lines[1:], strict=True):
        assert line.split()[:2] == [s, t]
    burst_django = lines[1 + pairs.index(("burst", "django"))]
    assert fmt("pct", sample.runs_of("burst", "django")[0].ledger.loss_pct) in burst_django


# ---------------------------------------------------------------- labels exactly when the data calls for them

def test_client_bound_label_appears_for_a_client_bound_run(tmp_path):
    data = make_data([make_run("django", dps=900, busiest=97.0, bound=True), make_run("fastapi", dps=5000)])
    html = render(tmp_path, data)
    assert html.count('class="flag cb"') >= 1
    assert "97.0%" in html
    assert "client-bound" in (tmp_path / "report.md").read_text()


def test_no_client_bound_label_without_a_client_bound_run(tmp_path):
    html = render(tmp_path, make_data([make_run("django", busiest=89.9), make_run("fastapi")]))
    assert 'class="flag cb"' not in html


def test_not_significant_single_runs_within_ten_percent(tmp_path):
    data = make_data([make_run("django", cost=10.0), make_run("fastapi", cost=10.5)])
    html = render(tmp_path, data)
    assert f'not significant ({escape(RULE_SINGLE)})' in html


def test_not_significant_when_ranges_overlap(tmp_path):
    runs = [make_run("django", repeat=0, cost=10.0), make_run("django", repeat=1, cost=20.0),
            make_run("fastapi", repeat=0, cost=15.0), make_run("fastapi", repeat=1, cost=30.0)]
    html = render(tmp_path, make_data(runs))
    assert f"not significant ({RULE_OVERLAP})" in html
    assert "[10.0–20.0]" in html


def test_no_not_significant_label_when_every_difference_is_clear(tmp_path):
    runs = [make_run("django", dps=1000, rtt=(10.0, 20.0, 30.0, 40.0), cost=50.0, rss=300 * MiB),
            make_run("fastapi", dps=5000, rtt=(1.0, 2.0, 3.0, 4.0), cost=10.0, rss=100 * MiB)]
    html = render(tmp_path, make_data(runs))
    assert 'class="ns"' not in html and "tag ns" not in html
    assert "5.0× more" in html  # server µs/delivery: 50 against the best, 10
    overlapping = [make_run("django", repeat=r, cost=10.0 + r) for r in (0, 1)] + \
        [make_run("fastapi", repeat=r, cost=30.0 + r) for r in (0, 1)]
    cost_row = render(tmp_path, make_data(overlapping)).split("server CPU µs/delivery")[1].split("</tr>")[0]
    assert "tag ns" not in cost_row and "2.9× more" in cost_row  # [10–11] against [30–31]: no overlap


def test_unexplained_losses_render_in_red(tmp_path):
    runs = [make_run("django", loss=1.0, unexplained=100), make_run("fastapi")]
    html = render(tmp_path, make_data(runs))
    assert re.search(r'<td class="num bad">100\b', html)
    assert "unexplained" in html
    verdicts = {cl.number: cl.verdict for cl in claims(make_data(runs))}
    assert verdicts["5"] == UNSETTLED
    clean = render(tmp_path, make_data([make_run("django"), make_run("fastapi")]))
    assert 'class="num bad"' not in clean


# ---------------------------------------------------------------- partial data

def test_failed_run_with_no_figures(tmp_path, capsys):
    failure = "server process 123 of django exited with code -9 3.1s into the run; its log ends:\n<boom>"
    runs = [make_run("django", status="failed", failure=failure, rtt=None, dps=0.0, cost=None, busiest=None),
            make_run("fastapi")]
    data = make_data(runs)
    html = render(tmp_path, data)
    check_html(html)
    assert escape(failure) in html and "<boom>" not in html
    assert 'class="flag failed"' in html
    print_summary(data)
    assert "failed" in capsys.readouterr().out


def test_interrupted_run_with_a_target_that_never_ran(tmp_path, capsys):
    data = make_data([make_run("django")], status="interrupted",
                     targets=("django", "fastapi", "fastapi-seed"))
    html = render(tmp_path, data)
    check_html(html)
    assert "Status: interrupted" in html
    assert "no runs for fastapi, fastapi-seed" in html
    assert "Not run in this scenario: fastapi, fastapi-seed" in html
    print_summary(data)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 + 3 and "not run" in out[2]


def test_summary_leaves_out_scenarios_a_target_was_not_meant_to_run(capsys):
    runs = [make_run("django"), make_run("fastapi")]
    runs.append(make_run("fastapi", scenario="other"))
    print_summary(make_data(runs, targets=("django", "fastapi")))
    lines = capsys.readouterr().out.strip().splitlines()[1:]
    assert [line.split()[:2] for line in lines] == [["steady", "django"], ["steady", "fastapi"], ["other", "fastapi"]]
    assert not any("not run" in line for line in lines)


def test_nothing_measured_at_all(tmp_path, capsys):
    data = Results(status="running")
    html = render(tmp_path, data)
    check_html(html)
    for title in SECTIONS:
        assert f"<h2>{escape(title)}</h2>" in html
    print_summary(data)
    assert "no runs" in capsys.readouterr().out


def test_harness_figure_when_present(tmp_path):
    data = make_data([make_run("django"), make_run("fastapi")])
    assert "not measured in this run" in render(tmp_path, data).split("harness")[1][:300]
    data.environment.harness = Harness(summary="123,456 deliveries per core-second",
                                       deliveries_per_core_s=Spread(median=123456.0, min=120000.0, max=130000.0),
                                       steal_pct=2.5)
    html = render(tmp_path, data)
    assert "123,456 deliveries per core-second" in html and "120,000–130,000" in html and "steal 2.5%" in html


# ---------------------------------------------------------------- the ramp

def ramp_data() -> Results:
    slo = 250.0
    runs = [make_run("fastapi", "ramp", s, dps=s * 1000, rtt=(1, p95, p95 + 1, p95 + 2), slo=slo)
            for s, p95 in ((1, 5.0), (2, 50.0), (4, 400.0))]
    runs += [make_run("django", "ramp", 1, dps=800, rtt=(100, 300.0, 301, 302), slo=slo, loss=2.0,
                      dropped=200),
             make_run("django", "ramp", 2, dps=900, rtt=(100, 200.0, 201, 202), slo=slo, bound=True,
                      busiest=95)]
    return make_data(runs)


def test_capacity_at_the_slo(tmp_path):
    data = ramp_data()
    fast, slow = ramp_capacity(data, "ramp", "fastapi"), ramp_capacity(data, "ramp", "django")
    assert (fast.state, fast.label, fast.stopped_label) == ("at", "2 msg/s per member", "4 msg/s per member")
    assert "RTT p95 400 ms over the SLO" in fast.stopped_why and fast.offered == 2 * 100 * 10
    assert slow.state == "below" and "loss 2.00%" in slow.stopped_why
    html = render(tmp_path, data)
    check_html(html)
    assert "below the first step (1 msg/s per member)" in html
    answer = html[html.index('id="answer"'):html.index('id="capacity"')]
    assert 'As a relay, fastapi (FastAPI) carries <a href="#capacity">2,000 deliveries/s</a>' in answer
    assert "; django (Channels) was <a href=\"#capacity\">over the SLO from the first load tried" in answer
    assert "SLO 250 ms" in html  # the SLO line on the RTT chart
    assert "Senders&#x27; round trip p95 against offered load" in html
    assert html.count("<svg") == 3  # RTT and deliveries against load, and the timeline
    assert 'class="flag cb"' in html  # django's second step was client-bound
    verdicts = {cl.number: cl.verdict for cl in claims(data)}
    assert verdicts["7b"] == FAILS  # Channels below the first step, FastAPI to step 2
    flipped = data.model_copy(deep=True)
    for r in flipped.runs:
        r.target = {"django": "fastapi", "fastapi": "django"}[r.target]
    assert {cl.number: cl.verdict for cl in claims(flipped)}["7b"] == HOLDS


def test_number_formats():
    assert fmt("rate", 66646.67) == "66,647" and fmt("rate", 0.5) == "0.5" and fmt("rate", 20.0) == "20"
    assert fmt("ms", 0.8171) == "0.817" and fmt("ms", 4767.743) == "4,768"
    assert fmt("ms", 16.527) == "16.5"
    assert fmt("bytes", 16 * MiB + 1) == "16 MiB + 1 B" and fmt("bytes", 5 * MiB) == "5 MiB"
    assert fmt("pct", 0) == "0" and fmt("pct", 22.44) == "22.4" and fmt("pct", 0.004) == "<0.01"
    assert fmt("us", None) == "—" and fmt("mib", 73162752) == "69.8"


# ---------------------------------------------------------------- the sample's sweeps and the claims they settle

def test_payload_sweep_charts_and_steps(sample, tmp_path):
    html = render(tmp_path, sample)
    check_html(html)
    assert "Loss against message size" in html and "1 MiB" in html and "16 MiB + 1 B" in html
    assert "All figures at 5 MiB messages" in html


def test_claim_2_idle_cpu_and_memory_per_connection(sample):
    busy = next(cl for cl in claims(sample) if cl.number == "2")
    for t in TARGETS:
        idle = sample.runs_of("idle", t)[0].server
        line = next(f for f in busy.figures if f.startswith(f"{t}:"))
        assert f"{fmt('pct1', idle.cpu_pct_mean)}% of a core" in line and "1,000 members" in line
        assert f"{fmt('kib', idle.rss_per_connection_bytes)} KiB" in line


def test_claim_3_burst_per_stack(sample):
    burst = next(cl for cl in claims(sample) if cl.number == "3")
    django = next(f for f in burst.figures if f.startswith("django (burst):"))
    dropped = sample.runs_of("burst", "django")[0].ledger.dropped_by_server["backlog_full"]
    assert f"backlog_full {fmt('int', dropped)}" in django and "channel layer's per-channel capacity" in django
    for t in ("fastapi", "fastapi-seed"):
        line = next(f for f in burst.figures if f.startswith(f"{t} (burst):"))
        assert "0 out of order, 0 duplicated, 0% lost" in line


def test_claims_4_to_6_flow_control_and_application_buckets(sample):
    found = {cl.number: cl for cl in claims(sample)}
    seed = next(f for f in found["4"].figures if f.startswith("fastapi-seed, one member per room never reads:"))
    assert "slowest second 0" in seed  # the seed's room stalled behind the member that does not read
    slow = sample.runs_of("slow", "django")[0].server
    grew = (slow.rss_peak_bytes - slow.rss_before_bytes) / 2  # two rooms, one non-reader each
    assert f"+{fmt('size', grew)} per slow member" in found["4"].figures[0]
    kernel = found["5"].figures[0]
    assert "zero-window advertisements" in kernel and "TCPRcvQDrop 0" in kernel
    assert any("first lost" in f and "1009 (refused by size limit)" in f for f in found["5"].figures)
    assert any("not measured in this run" in f for f in found["5"].figures)  # no Redis target ran
    photo = found["6"].figures
    assert any("rmem_max = 4194304 (the blog's: 212992)" in f for f in photo)
    assert any(f.startswith("5 MiB messages") and "fastapi-seed 72 of 72, 0% lost" in f for f in photo)
    assert any("1009" in f and "over the 16 MiB limit" in f for f in photo)


def test_claim_7a_compares_only_timed_steps(sample):
    speed = next(cl for cl in claims(sample) if cl.number == "7a")
    assert not any(f.startswith(("payload", "idle")) for f in speed.figures)  # too few deliveries to time
    steady = next(f for f in speed.figures if f.startswith("steady:"))
    cost = fold(sample.runs_of("steady", "django"), COST)
    assert f"django {fmt('us', cost.median)} [{fmt('us', cost.lo)}–{fmt('us', cost.hi)}] µs" in steady


def test_claim_7b_uses_redis_runs_when_present(sample):
    scale = next(cl for cl in claims(sample) if cl.number == "7b")
    assert any("Redis" in f and "not measured in this run" in f for f in scale.figures)
    data = sample.model_copy(deep=True)
    for name in ("django-redis", "fastapi-redis"):
        data.targets[name] = sample.targets[name.removesuffix("-redis")].model_copy(update={"layer": "redis"})
        runs = sample.runs_of("steady", name.removesuffix("-redis"))
        data.runs += [r.model_copy(update={"target": name, "scenario": "scale"}) for r in runs]
    scale = next(cl for cl in claims(data) if cl.number == "7b")
    assert any(f.startswith("scale: django-redis") and "fastapi-redis" in f for f in scale.figures)
    assert not any("not measured in this run" in f for f in scale.figures)
    ramped = sample.model_copy(deep=True)  # a `scale` ramp with an SLO: capacity per Redis target
    for name in ("django-redis", "fastapi-redis"):
        ramped.targets[name] = data.targets[name]
        runs = sample.runs_of("ramp", name.removesuffix("-redis"))
        ramped.runs += [r.model_copy(update={"target": name, "scenario": "scale"}) for r in runs]
    scale = next(cl for cl in claims(ramped) if cl.number == "7b")
    line = next(f for f in scale.figures if f.startswith("capacity at the SLO (scale)"))
    assert "django-redis 1 msg/s per member" in line and "fastapi-redis 16 msg/s per member" in line


def test_few_round_trips_are_shown_but_not_compared(sample, tmp_path):
    html = render(tmp_path, sample)
    table = html[html.index('id="scenario-slow"'):html.index('id="scenario-burst"')]
    n = sample.runs_of("slow", "fastapi-seed")[0].rtt_ms.count
    assert f"from {n} messages" in table


def test_client_cost_beside_the_harness(sample, tmp_path):
    html = render(tmp_path, sample)
    costs = sorted(r.client.cpu_us_per_delivery for r in sample.runs if r.client.cpu_us_per_delivery)
    median = statistics.median(costs)
    assert f"{fmt('rate', 1e6 / median)} deliveries per client CPU-second" in html
    assert "load generator, best case (harness self-benchmark)" in html


def test_noisy_label_appears_for_a_noisy_run(tmp_path):
    data = make_data([make_run("django", noisy=True), make_run("fastapi")])
    html = render(tmp_path, data)
    assert html.count('class="flag noisy"') >= 1 and "other processes 25.0%" in html
    assert "noisy" in (tmp_path / "report.md").read_text()
    assert 'class="flag noisy"' not in render(tmp_path, make_data([make_run("django"), make_run("fastapi")]))


def test_the_report_can_be_written_again_from_a_results_file(tmp_path, capsys):
    from bench.report.__main__ import main

    results = tmp_path / "results.json"
    results.write_text(SAMPLE.read_text())
    assert json.loads(results.read_text())["format_version"] == 1
    assert main([str(results)]) == 0
    html = (tmp_path / "report.html").read_text()
    assert all(f'id="{anchor}"' in html for anchor in SECTIONS.values())
    assert (tmp_path / "report.md").exists() and "report.html" in capsys.readouterr().out
    assert json.loads(results.read_text())["format_version"] == FORMAT_VERSION  # written again, upgraded
    again = tmp_path / "again"
    again.mkdir()
    (again / "results.json").write_text(results.read_text())
    assert main([str(again / "results.json")]) == 0
    for name in ("report.html", "report.md"):  # the upgraded record renders the format-1 file's report
        assert (again / name).read_text() == (tmp_path / name).read_text()
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


# ---------------------------------------------------------------- the answer it opens with

def headline_rows(html: str) -> dict[str, str]:
    """The headline table's rows by target: each row's HTML."""
    table = html[html.index('<table class="cmp headline">'):]
    table = table[table.index("<tbody>"):table.index("</table>")]
    rows = re.findall(r"<tr><th>(.*?)</tr>", table, re.S)
    return {re.search(r"</span>([\w.-]+)<(?:span|sup)", row).group(1): row for row in rows}


def test_the_report_opens_with_a_headline_row_per_target_holding_the_results_figures(sample, tmp_path):
    html = render(tmp_path, sample)
    assert html.index('id="answer"') < html.index('id="capacity"') < html.index('id="scenarios"')
    rows = headline_rows(html)
    assert list(rows) == list(TARGETS)
    for t, row in rows.items():
        cap = ramp_capacity(sample, "ramp", t)
        assert f">{fmt('rate', fold(cap.runs, DPS).median)}</a>" in row, (t, row)
        assert f">{fmt('us', fold(sample.runs_of('steady', t), COST).median)} µs</a>" in row
        assert ">5 MiB</a>" in row and "16 MiB + 1 B refused with close 1009" in row  # largest whole, and past it
    assert ">buffers</a>" in rows["django"] and ">drops</a>" in rows["fastapi"]
    assert ">stalls the room</a>" in rows["fastapi-seed"]
    dropped = sample.runs_of("slow", "fastapi")[0].ledger.dropped_by_server["backlog_full"]
    assert f"backlog_full {dropped}" in rows["fastapi"]
    assert ">ramp at 4 msg/s per member</a>" in rows["django"] and ">slow</a>" in rows["fastapi"]  # first loss
    answer = html[html.index('id="answer"'):html.index('id="capacity"')]
    paragraphs = re.findall(r'<div class="plain"><h3>(.*?)</h3><p>(.*?)</p></div>', answer, re.S)
    assert paragraphs[0][0] == "Which carries more chat, as a relay?" and 'href="#capacity"' in paragraphs[0][1]
    assert all("<a href=\"#" in text for _, text in paragraphs)  # every answer links to the section proving it
    md = (tmp_path / "report.md").read_text()
    assert md.index("## The answer") < md.index("**Which carries more chat, as a relay?**") < md.index("## steady")
    assert "The loss ledger: " in md and " unexplained" in md
    assert all(f"| {t} (" in md for t in TARGETS) and "(report.html#capacity)" in md


def test_any_target_name_gets_a_stack_a_colour_and_a_row(tmp_path):
    names = ("django", "django-uvicorn", "reference", "fastapi", "django-app", "fastapi-app", "my-server")
    data = make_data([make_run(t) for t in names], targets=names)
    described = {"django-uvicorn": ("channels", "uvicorn 0.54.0 (channels 4.3.2)"),
                 "reference": ("broadcast", "websockets 17.4"), "django-app": ("channels", "daphne 4.2.3 (channels 4)"),
                 "fastapi-app": ("queued", "uvicorn 0.54.0 (fastapi 0.165.0)"), "my-server": ("broadcast", "custom")}
    for t, (fanout, server) in described.items():
        data.targets[t].fanout, data.targets[t].server = fanout, server
    data.targets["django"].patched = ["django_chat/daphne_fixes.py"]
    html = render(tmp_path, data)
    check_html(html)
    rows = headline_rows(html)
    assert list(rows) == list(names)
    stacks = {t: re.search(r'class="fnote">(\w+)', row).group(1) for t, row in rows.items()}
    assert stacks == {"django": "Channels", "django-uvicorn": "Channels", "reference": "reference",
                      "fastapi": "FastAPI", "django-app": "Channels", "fastapi-app": "FastAPI",
                      "my-server": "reference"}
    colours = {t: re.search(r'class="marker" style="color:(#\w+)"', row).group(1) for t, row in rows.items()}
    assert len(set(colours.values())) == len(names)
    for t, colour in colours.items():  # the same colour for the target in every chart's legend
        assert re.search(rf'stroke="{colour}"[^>]*/?>(<[^t][^>]*>)*<text[^>]*>{re.escape(t)}</text>', html), t
    assert 'class="patched" title="django_chat/daphne_fixes.py"' in rows["django"]
    assert "patched" not in rows["fastapi"]
    assert "<code>django_chat/daphne_fixes.py</code> (django)" in html  # said once, not under every target
    assert "| django ✱ (Channels) |" in (tmp_path / "report.md").read_text()


def test_a_target_with_one_step_is_a_labelled_point(tmp_path):
    slo = 250.0
    runs = [make_run("fastapi", "ramp", r, dps=r * 1000, rtt=(1, 5.0, 6, 7), slo=slo) for r in (1, 2, 4)]
    runs.append(make_run("django", "ramp", 1, dps=800, rtt=(100, 300.0, 301, 302), slo=slo, loss=2.0))
    html = render(tmp_path, make_data(runs))
    rtt_chart = html[html.index("Senders&#x27; round trip p95 against offered load</title>"):]
    rtt_chart = rtt_chart[:rtt_chart.index("</svg>")]
    assert re.search(r"<text[^>]*>django: 300</text>", rtt_chart)  # named, with its value, beside it
    assert not re.search(r"<text[^>]*>fastapi: ", rtt_chart)  # a line of several steps needs no label
