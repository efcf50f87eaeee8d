"""This bench beside the one before it: each searched capacity, and the headline's ratios between the stacks,
with why a figure that moved did (bench.compare's causes). The run writes it into the record (Results.repeated),
which the report shows: two benches on one machine agree within ±15%, or the report says which did not and why."""

from __future__ import annotations

from pathlib import Path

from bench.compare.figures import Change, changes
from bench.record import Moved, Repeated, Results

RATIOS = (("fastapi", "django"), ("fastapi-app", "django-app"))  # the headline's stock ratios, when both ran


def searched_pairs(data: Results) -> set[tuple[str, str]]:
    return {(c.target, c.scenario) for c in data.capacities}


def previous_bench(out: Path, data: Results) -> Path | None:
    """The results.json of the latest bench that ran before this one in a sibling folder of `out`
    (reports/<timestamp>/), completed, and searched the same capacities: the bench this one repeats."""
    here, mine = Path(out).resolve(), searched_pairs(data)
    if not mine or not here.parent.is_dir():
        return None
    for folder in sorted(here.parent.iterdir(), reverse=True):
        path = folder / "results.json"
        if folder.name >= here.name or not path.is_file():
            continue
        try:
            old = Results.load(path)
        except (OSError, ValueError):  # an unreadable or foreign file is not a bench to repeat
            continue
        if old.status == "complete" and searched_pairs(old) == mine:
            return path
    return None


def ratios(found: dict[str, Change]) -> list[Moved]:
    rows = []
    for fast, slow in RATIOS:
        if fast in found and slow in found:
            a, b = found[fast], found[slow]
            if a.old.stat.median and b.old.stat.median and b.new.stat.median:
                rows.append(Moved(name=f"{fast} ÷ {slow}", old=a.old.stat.median / b.old.stat.median,
                                  new=a.new.stat.median / b.new.stat.median))
    return rows


def repeated(data: Results, baseline: Results, against: str) -> Repeated | None:
    """Each searched capacity of `data`, and the headline ratios, beside `baseline`'s (None: none in common)."""
    found = {c.new.target: c for c in changes(baseline, data)
             if c.new.metric.name == "capacity" and c.old.stat.median}
    if not found:
        return None
    return Repeated(against=against, started=baseline.started, code=baseline.environment.code,
                    capacities=[Moved(name=t, old=c.old.stat.median, new=c.new.stat.median,
                                      full_speed_pct=c.full_speed_pct, why=c.why) for t, c in found.items()],
                    ratios=ratios(found))
