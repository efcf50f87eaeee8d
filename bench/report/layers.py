"""Where the CPU goes: each profiled run's server CPU per delivery split by layer (Run.profile, from
bench/run/profiler.py), side by side per target; each target's cost as a multiple of the reference
target's, the floor measured in the same results; and whether daphne or Channels is the expensive part
(django and django-uvicorn serve the same Channels app with different servers)."""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup

from bench.record import ProfileBasis, Results, Run, edge_runs, searched
from bench.report.numbers import fmt, ratio
from bench.report.runs import flag_notes, ran, unique
from bench.report.steps import where

ORDER = ["server", "framework", "app", "event loop", "redis client", "database client", "stdlib/other",
         "redis server", "database server"]
REFERENCE = "reference"
SAME_SERVER = ("django", "django-uvicorn")  # the same Channels app on daphne, then on uvicorn


def profiled(data: Results, target: str) -> Run | None:
    """The run that says where the target's CPU goes at its capacity: the held pass at its searched capacity,
    else its last run with a layer split (the ramp-profile run of a search without a held pass)."""
    split = lambda r: r.profile is not None and bool(r.profile.layers_us)  # noqa: E731
    cap = searched(data, target)
    at_edge = [r for r in edge_runs(data, cap) if split(r)] if cap and cap.held else []
    return at_edge[-1] if at_edge else next((r for r in reversed(data.runs_of(target=target)) if split(r)), None)


@dataclass
class Column:
    target: str
    at: str  # the scenario and step the split comes from
    over: str  # said when the run itself was over the SLO
    total: float
    layers: dict[str, float]
    basis: str
    flags: list[tuple[str, str]]
    flame: Markup | None


@dataclass
class Layers:
    columns: list[Column]  # a row of the table per profiled target
    names: list[str]  # the layers, in the table's column order
    cells: list[list[str]]  # per target: µs per delivery per layer, then the total
    floor: list[str] = field(default_factory=list)
    server_or_framework: str = ""
    unprofiled: list[str] = field(default_factory=list)


def basis_text(basis: ProfileBasis) -> str:
    """What the split rests on: samples, and the shares unread, idle and unattributed, and the coverage."""
    return (f"{fmt('int', basis.samples)} samples; errors {fmt('pct1', basis.errors_pct)}%, idle "
            f"{fmt('pct1', basis.idle_pct)}%, unattributed {fmt('pct1', basis.other_pct)}%; coverage "
            f"{fmt('ms', basis.coverage)} samples per CPU tick")


def column(run: Run, slo: float | None) -> Column:
    prof = run.profile
    assert prof is not None  # a run that `profiled` picked
    flame = Markup(prof.flame_svg) if prof.flame_svg else None  # built by bench/run/profiler.py, escaped there
    return Column(run.target, where(run), over_slo_note(run, slo), sum(prof.layers_us.values()), prof.layers_us,
                  basis_text(prof.basis), flag_notes([run]), flame)


def over_slo_note(run: Run, slo: float | None) -> str:
    """The profiled run sits at the searched edge; sampling, or the machine's noise, can push it over."""
    p95 = run.rtt_ms.p95
    if slo is None or p95 is None or p95 <= slo:
        return ""
    return f" (its RTT p95 {fmt('ms', p95)} ms was over the SLO of {fmt('ms', slo)} ms)"


def floor_lines(cols: dict[str, Column]) -> list[str]:
    """Each target's server CPU per delivery as a multiple of the reference's, from the profiled runs."""
    ref = cols.get(REFERENCE)
    if ref is None or not ref.total:
        return []
    return [f"{c.target}: {fmt('us', c.total)} µs per delivery ({c.at}) = {ratio(ref.total, c.total)} the "
            f"reference's {fmt('us', ref.total)} µs ({ref.at})" for c in cols.values() if c.target != REFERENCE]


def server_or_framework(cols: dict[str, Column]) -> str:
    """Is it daphne or Channels? Within each of django (daphne) and django-uvicorn, which of the server and
    framework layers costs more; and what swapping the server changed in each (the framework layer is the
    same code under both)."""
    if not all(t in cols for t in SAME_SERVER):
        return ""
    d, u = (cols[t] for t in SAME_SERVER)
    get = lambda c, layer: c.layers.get(layer, 0.0)  # noqa: E731
    larger = {c.target: "framework" if get(c, "framework") > get(c, "server") else "server" for c in (d, u)}
    answer = ("It is Channels: under both servers the framework layer (Channels, asgiref, Django) costs more "
              "than the server layer" if set(larger.values()) == {"framework"} else
              "It is the server: under both, the server layer costs more than the framework layer"
              if set(larger.values()) == {"server"} else "Mixed: the larger layer differs between the two servers")
    each = "; ".join(f"{c.target} {fmt('us', c.total)} µs per delivery: framework {fmt('us', get(c, 'framework'))}"
                     f", server {fmt('us', get(c, 'server'))}" for c in (d, u))
    swap = ", ".join(f"{layer} {signed(get(u, layer) - get(d, layer))} µs" for layer in ("server", "framework"))
    return (f"{answer} ({each}). Serving it with uvicorn instead of daphne changed: {swap}, total "
            f"{signed(u.total - d.total)} µs. Each run was at its own target's capacity, so the loads differ: "
            "read the split, not the totals, as the answer.")


def signed(v: float) -> str:
    return ("+" if v >= 0 else "−") + fmt("us", abs(v))


def layers_view(data: Results) -> Layers:
    cols = {t: column(run, cap.slo_p95_ms if (cap := searched(data, t)) else None)
            for t in ran(data) if (run := profiled(data, t))}
    seen = unique(layer for c in cols.values() for layer in c.layers)
    names = [layer for layer in ORDER if layer in seen] + [layer for layer in seen if layer not in ORDER]
    cells = [[fmt("us", c.layers[layer]) if layer in c.layers else "—" for layer in names] + [fmt("us", c.total)]
             for c in cols.values()]
    unprofiled = [t for t in ran(data) if t not in cols]
    return Layers(list(cols.values()), names, cells, floor_lines(cols), server_or_framework(cols), unprofiled)
