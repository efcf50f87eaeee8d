/* The Chat tab of Locust's web UI (bench/load/live.py): Locust renders an extended tab as a table
   only, so this draws the tab's content itself, from /chat/stats once a second: inline SVG charts
   and the ledger's totals. Nothing is loaded from elsewhere. */
(() => {
  const KEY = 'chat';
  const STATS = '/chat/stats';
  const EVERY_MS = 1000;
  const COLORS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#999999']; // Okabe-Ito, grey
  const CSS = `
    #chat-live{margin:0 0 24px;font-size:14px;line-height:1.4}
    #chat-live .head{margin:0 0 12px}
    #chat-live .warn{color:#D55E00}
    #chat-live .grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:16px;margin:0 0 16px}
    #chat-live .card{border:1px solid rgba(128,128,128,.35);border-radius:4px;padding:12px 14px}
    #chat-live h3{font-size:15px;font-weight:500;margin:0 0 6px}
    #chat-live svg{width:100%;height:auto;display:block}
    #chat-live svg text{fill:currentColor;font-size:11px}
    #chat-live .grid-line{stroke:currentColor;stroke-opacity:.2}
    #chat-live .legend{font-size:12px;margin-top:4px}
    #chat-live .legend span{margin-right:14px;white-space:nowrap;display:inline-block}
    #chat-live .sw{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px;vertical-align:-1px}
    #chat-live table{border-collapse:collapse;width:100%}
    #chat-live td,#chat-live th{padding:3px 6px;text-align:left;border-bottom:1px solid rgba(128,128,128,.2);font-weight:normal}
    #chat-live th{opacity:.7}
    #chat-live .n{text-align:right;font-variant-numeric:tabular-nums}
    #chat-live .note{opacity:.7;font-size:12px;margin:6px 0 0}`;
  let panel = null;

  const onTab = () => new URLSearchParams(location.search).get('tab') === KEY;
  const esc = s => String(s).replace(/[&<>"]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  const fmt = (v, digits = 0) =>
    v === null || v === undefined ? '–' : Number(v).toLocaleString('en-US', { maximumFractionDigits: digits });
  const fmtTenths = v => fmt(v, v >= 100 ? 0 : 1); // a tenth of a millisecond matters only below 100

  function niceStep(v) {
    const unit = 10 ** Math.floor(Math.log10(v));
    return [1, 2, 5, 10].map(m => m * unit).find(step => step >= v);
  }

  /* A line chart of `lines` ({label, values}, one value or null per point) over the points' times. */
  function chart(title, points, lines, digits) {
    const W = 420, H = 170, L = 46, R = 8, T = 8, B = 20;
    const t0 = points.length ? points[0].t : 0;
    const t1 = Math.max(points.length ? points[points.length - 1].t : 0, t0 + 1);
    const ys = lines.flatMap(l => l.values).filter(v => v !== null && v !== undefined);
    const most = Math.max(0, ...ys);
    const step = Math.max(digits ? 0 : 1, niceStep(Math.max(most, 1e-9) / 4)); // whole numbers for counts
    const top = step * Math.max(1, Math.ceil(most / step));
    const x = t => (L + ((t - t0) / (t1 - t0)) * (W - L - R)).toFixed(1);
    const y = v => (T + (1 - v / top) * (H - T - B)).toFixed(1);
    let svg = '';
    for (let v = 0; v <= top + step / 2; v += step) {
      svg += `<line class="grid-line" x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}"/>`;
      svg += `<text x="${L - 4}" y="${+y(v) + 4}" text-anchor="end">${fmt(v, digits)}</text>`;
    }
    svg += `<text x="${L}" y="${H - 4}">${fmt(t0, 0)} s</text>`;
    svg += `<text x="${W - R}" y="${H - 4}" text-anchor="end">${fmt(t1, 0)} s</text>`;
    lines.forEach((line, i) => {
      const color = COLORS[i % COLORS.length];
      let d = '';
      line.values.forEach((v, k) => {
        if (v === null || v === undefined) return;
        const known = k > 0 && line.values[k - 1] !== null && line.values[k - 1] !== undefined;
        const alone = !known && (line.values[k + 1] === null || line.values[k + 1] === undefined);
        d += `${known ? 'L' : 'M'}${x(points[k].t)},${y(v)}`;
        if (alone) svg += `<circle cx="${x(points[k].t)}" cy="${y(v)}" r="2.5" fill="${color}"/>`;
      });
      if (d) svg += `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`;
    });
    const legend = lines.length
      ? lines.map((line, i) => {
        const last = [...line.values].reverse().find(v => v !== null && v !== undefined);
        const value = digits ? fmtTenths(last) : fmt(last);
        return `<span><i class="sw" style="background:${COLORS[i % COLORS.length]}"></i>${esc(line.label)}: ${value}</span>`;
      }).join('')
      : '<span>none so far</span>';
    return `<div class="card"><h3>${esc(title)}</h3>` +
      `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">${svg}</svg>` +
      `<div class="legend">${legend}</div></div>`;
  }

  /* Table rows of [figure, label, value]: the figure names the value for tests (data-figure). */
  function rows(entries) {
    if (!entries.length) return '<tr><td>none</td><td class="n">–</td></tr>';
    return entries.map(([key, label, value]) =>
      `<tr><td>${esc(label)}</td><td class="n" data-figure="${esc(key)}" data-value="${esc(value)}">${fmt(value)}</td></tr>`,
    ).join('');
  }
  const keyed = (prefix, object) => Object.entries(object).map(([label, value]) => [prefix + label, label, value]);

  function table(title, body, note = '') {
    return `<div class="card"><h3>${esc(title)}</h3><table>${body}</table>${note && `<p class="note">${note}</p>`}</div>`;
  }

  function latencyRows(latency) {
    const head = '<tr><th></th><th class="n">p50</th><th class="n">p95</th><th class="n">p99</th><th class="n">max</th><th class="n">count</th></tr>';
    return head + Object.entries(latency).map(([name, p]) =>
      `<tr><td>${esc(name)}</td>${['p50', 'p95', 'p99', 'max', 'count'].map(k =>
        `<td class="n" data-figure="${esc(`latency:${name}:${k}`)}" data-value="${esc(p[k])}">${k === 'count' ? fmt(p[k]) : fmtTenths(p[k])}</td>`).join('')}</tr>`,
    ).join('');
  }

  function render(s) {
    const pts = s.series;
    const causes = [...new Set(pts.flatMap(p => Object.keys(p.lost)))]; // as they appeared: colours stay put
    const unfilled = s.state === 'running' ? s.users % s.room_size : 0; // not while users still spawn
    const servers = esc(s.hosts.join(', ') || 'no host');
    const head = `Chatting with ${s.target ? `<b>${esc(s.target)}</b> (${servers})` : `<b>${servers}</b>`} · ` +
      `rooms of ${fmt(s.room_size)} members · ${fmt(s.users)} users · ${esc(s.state)}` +
      (unfilled ? ` · <span class="warn">a room is not full (${fmt(unfilled)} of ${fmt(s.room_size)} members) and waits: ` +
        `start a multiple of ${fmt(s.room_size)} users</span>` : '');
    panel.innerHTML = `<style>${CSS}</style><p class="head">${head}</p>` +
      '<div class="grid">' +
      chart('Deliveries/s', pts, [{ label: 'deliveries/s', values: pts.map(p => p.deliveries_per_s) }], 0) +
      chart('Loss so far, by cause', pts, causes.map(c => ({ label: c, values: pts.map(p => p.lost[c] ?? 0) })), 0) +
      chart('Delivery latency (ms)', pts, [
        { label: 'p50', values: pts.map(p => p.latency_p50_ms) },
        { label: 'p95', values: pts.map(p => p.latency_p95_ms) },
      ], 1) +
      chart('Server CPU (% of one core)', pts, [{ label: 'CPU %', values: pts.map(p => p.server_cpu_pct) }], 0) +
      chart('Server CPU per delivery (µs)', pts,
        [{ label: 'µs/delivery', values: pts.map(p => p.server_us_per_delivery) }], 1) +
      '</div><div class="grid">' +
      table('Messages', rows([
        ['sent', 'sent', s.sent], ['received', 'received (deliveries)', s.received],
        ['deliveries_per_s', 'deliveries/s now', s.deliveries_per_s],
        ['server_cpu_pct', 'server CPU % now (of one core)', s.server_cpu_pct],
        ['server_us_per_delivery', 'server µs per delivery now', s.server_us_per_delivery],
        ['connect_failed', 'connections that failed', s.connect_failed],
      ])) +
      table('Ledger of the rooms that settled', rows(keyed('', s.ledger)),
        'A room settles when it ends (the run stopped, or its window closed).') +
      table('Lost, by cause', rows(keyed('lost:', s.lost)),
        'Server drops are live (its /stats); the rest, from settled rooms.') +
      table('Connections closed, by code', rows(keyed('closed:', s.closes))) +
      table('Latency (ms)', latencyRows(s.latency_ms)) +
      '</div>';
  }

  async function refresh() {
    if (!panel) return;
    try {
      const s = await (await fetch(STATS)).json();
      if (panel) render(s);
    } catch (e) {
      panel.querySelector('.head').textContent = `/chat/stats did not answer: ${e}`;
    }
  }

  function place() {
    if (!onTab()) {
      if (panel) { panel.remove(); panel = null; }
      return;
    }
    const tabs = document.querySelector('.MuiTabs-root');
    if (!tabs || (panel && panel.isConnected)) return;
    panel = document.createElement('section');
    panel.id = 'chat-live';
    panel.innerHTML = '<p class="head">Loading…</p>';
    tabs.parentElement.after(panel);
    refresh();
  }

  // The Host field follows the chosen target, so that Locust's header names the servers the run uses.
  document.addEventListener('change', event => {
    const urls = (window.templateArgs.chat_targets || {})[event.target.value];
    const host = document.querySelector('input[name=host]');
    if (event.target.name !== 'chatTarget' || !urls || !host) return;
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(host, urls[0]);
    host.dispatchEvent(new Event('input', { bubbles: true }));
  });

  new MutationObserver(place).observe(document.body, { childList: true, subtree: true });
  setInterval(() => { place(); refresh(); }, EVERY_MS);
})();
