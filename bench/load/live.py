"""A live page beside Locust's web UI: deliveries, loss and latency of the chat run so far."""

from __future__ import annotations

from collections.abc import Callable

from bench.load.tally import Tally, family, percentiles

PAGE = """<!doctype html><meta charset="utf-8"><title>chat run, live</title>
<style>body{font:14px system-ui;margin:2em}td{padding:2px 12px}</style>
<h1>Chat run, live</h1><p>Refreshes every 2 s. Locust's own tab shows the senders' round trips.</p>
<table id="t"></table>
<script>
async function tick(){const s=await (await fetch('chat/stats')).json();
document.getElementById('t').innerHTML=Object.entries(s).map(([k,v])=>`<tr><td>${k}<td>${v}`).join('');}
tick();setInterval(tick,2000);
</script>"""


def summary(tally: Tally, room_size: int) -> dict:
    c = tally.counters
    sent, received = c["client_sent"], c["client_received"]
    offered = sent * room_size
    seconds = sorted(int(s) for s in tally.timeline)
    last_full = [tally.timeline[str(s)] for s in seconds[-3:-1]]
    return {
        "messages sent": sent,
        "deliveries received": received,
        "deliveries/s (last full seconds)": " ".join(map(str, last_full)) or "-",
        "not (yet) delivered": max(0, offered - received),
        "loss so far (settled rooms)": c["expected"] - c["delivered"] if c["expected"] else "-",
        "connections closed (by code)": family(c, "closed"),
        **{f"{name} ms p50/p95/p99/max": "/".join(str(v) for v in list(percentiles(h).values())[1:])
           for name, h in tally.histograms.items()},
    }


def install_live_view(environment, merged: Callable[[], Tally]) -> None:
    web_ui = environment.web_ui
    if web_ui is None:
        return
    room_size = environment.parsed_options.chat_room_size

    @web_ui.app.route("/chat")
    def chat_page():
        return PAGE

    @web_ui.app.route("/chat/stats")
    def chat_stats():
        return summary(merged(), room_size)
