"""Two runs of the bench side by side: `python -m bench.compare OLD/results.json NEW/results.json`
prints and writes a table per scenario with each figure's change, "not significant" where the
difference is within the runs' spread, and gates on thresholds (`--fail-on`, thresholds.py)."""
