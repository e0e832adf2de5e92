/**
 * The live cluster dashboard, served at `/` by every node: one self-contained page (no build
 * step, nothing fetched from elsewhere) that polls `GET /v1/cluster` once a second, from the
 * node that served it or, when that one stops answering, from any other member it knows
 * (those answers allow any origin), and draws the members, the leader, the recent elections and
 * two charts of the last minutes (commits per second; p50 and p99 write latency). Its buttons
 * call `POST /v1/leader/transfer` and `POST /v1/snapshot`.
 */

/** The page's HTML. */
export function dashboardPage(title: string): string {
  const safeTitle = title.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${safeTitle} · cluster</title>
<style>
  :root { --bg:#0f1419; --panel:#171d24; --line:#263040; --text:#dce3ea; --dim:#8593a3;
          --leader:#f2b84b; --follower:#4ba3f2; --candidate:#c678dd; --down:#e06c75; --ok:#98c379; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--text); }
  header { display:flex; align-items:baseline; gap:16px; padding:16px 24px; border-bottom:1px solid var(--line); }
  header h1 { margin:0; font-size:18px; }
  header .desc { color:var(--dim); }
  header .conn { margin-left:auto; color:var(--dim); }
  header .conn b.live { color:var(--ok); } header .conn b.lost { color:var(--down); }
  main { padding:20px 24px; display:grid; gap:20px; grid-template-columns: repeat(12, 1fr); }
  .panel { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:14px 16px; }
  .cards { grid-column: span 12; display:grid; grid-template-columns: repeat(4, 1fr); gap:20px; }
  .card .label { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.06em; }
  .card .value { font-size:28px; font-weight:600; margin-top:4px; font-variant-numeric: tabular-nums; }
  #leader { color:var(--leader); }
  .members { grid-column: span 12; }
  table { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align:left; padding:7px 8px; border-bottom:1px solid var(--line); }
  th { color:var(--dim); font-weight:500; font-size:12px; }
  .badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; }
  .role-leader { background:rgba(242,184,75,.15); color:var(--leader); }
  .role-follower { background:rgba(75,163,242,.15); color:var(--follower); }
  .role-candidate, .role-preCandidate { background:rgba(198,120,221,.15); color:var(--candidate); }
  .role-down { background:rgba(224,108,117,.15); color:var(--down); }
  .lagbar { display:inline-block; height:6px; background:var(--follower); border-radius:3px; vertical-align:middle; margin-left:6px; }
  .charts { grid-column: span 8; display:grid; gap:14px; }
  .side { grid-column: span 4; display:grid; gap:20px; align-content:start; }
  canvas { width:100%; height:150px; display:block; }
  h2 { margin:0 0 10px; font-size:13px; color:var(--dim); font-weight:500; text-transform:uppercase; letter-spacing:.06em; }
  .legend span { margin-right:12px; color:var(--dim); font-size:12px; }
  .legend i { display:inline-block; width:10px; height:3px; vertical-align:middle; margin-right:4px; }
  button, select { background:#223044; color:var(--text); border:1px solid #2f3f55; border-radius:6px; padding:7px 12px; font:inherit; cursor:pointer; }
  button:hover { background:#2a3b53; }
  .actions { display:flex; flex-wrap:wrap; gap:8px; align-items:center; }
  #message { color:var(--dim); min-height:1.4em; margin-top:8px; }
  ul { margin:0; padding-left:18px; } li { margin:2px 0; }
  a { color:var(--follower); }
  @media (max-width: 900px) { .charts, .side { grid-column: span 12; } .cards { grid-template-columns: repeat(2, 1fr); } }
</style>
</head>
<body>
<header>
  <h1 id="title">${safeTitle}</h1><span class="desc" id="description"></span>
  <span class="conn">served by <span id="source">…</span> · <b id="connection">connecting</b></span>
</header>
<main>
  <section class="cards">
    <div class="panel card"><div class="label">Leader</div><div class="value" id="leader">—</div></div>
    <div class="panel card"><div class="label">Term</div><div class="value" id="term">—</div></div>
    <div class="panel card"><div class="label">Commit index</div><div class="value" id="commit">—</div></div>
    <div class="panel card"><div class="label">Writes / s</div><div class="value" id="rate">—</div></div>
  </section>
  <section class="panel members">
    <h2>Members</h2>
    <table>
      <thead><tr><th>Node</th><th>Role</th><th>Term</th><th>Commit</th><th>Applied</th><th>Last log</th><th>Snapshot</th><th>Lag</th><th>Raft address</th><th>HTTP</th></tr></thead>
      <tbody id="members"></tbody>
    </table>
  </section>
  <section class="charts">
    <div class="panel"><h2>Throughput (entries committed per second)</h2><canvas id="throughput"></canvas></div>
    <div class="panel"><h2>Write latency on this node (ms)</h2>
      <div class="legend"><span><i style="background:var(--ok)"></i>p50</span><span><i style="background:var(--leader)"></i>p99</span></div>
      <canvas id="latency"></canvas></div>
  </section>
  <section class="side">
    <div class="panel"><h2>Actions</h2>
      <div class="actions">
        <select id="transfer-to" aria-label="transfer target"><option value="">most up-to-date voter</option></select>
        <button id="transfer">Transfer leadership</button>
        <button id="snapshot">Take snapshot</button>
      </div>
      <div id="message" role="status"></div>
    </div>
    <div class="panel"><h2>Recent elections</h2><ul id="elections"><li>none seen</li></ul></div>
  </section>
</main>
<script>
(() => {
  const $ = (id) => document.getElementById(id);
  const own = location.origin;
  let sources = [own];
  let current = own;
  let last = null;

  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
  // Numbers come from other nodes' answers: show them only as numbers.
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? String(v) : '—');
  const time = (t) => new Date(t).toLocaleTimeString();

  async function fetchView() {
    const order = [current, ...sources.filter((s) => s !== current)];
    for (const base of order) {
      try {
        const res = await fetch(base + '/v1/cluster', { signal: AbortSignal.timeout(1500) });
        if (!res.ok) continue;
        current = base;
        return await res.json();
      } catch {}
    }
    return null;
  }

  function drawChart(canvas, series, colors) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = w * dpr; canvas.height = h * dpr;
    const g = canvas.getContext('2d');
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, h);
    const pad = { l: 44, r: 8, t: 8, b: 18 };
    const points = series.flat().filter((v) => v !== null);
    const max = Math.max(1, ...points) * 1.15;
    g.strokeStyle = '#263040'; g.fillStyle = '#8593a3'; g.font = '11px system-ui'; g.lineWidth = 1;
    for (let i = 0; i <= 3; i++) {
      const y = pad.t + ((h - pad.t - pad.b) * i) / 3;
      g.beginPath(); g.moveTo(pad.l, y); g.lineTo(w - pad.r, y); g.stroke();
      const v = max * (1 - i / 3);
      g.fillText(v >= 100 ? v.toFixed(0) : v.toFixed(1), 4, y + 4);
    }
    const n = Math.max(2, ...series.map((s) => s.length));
    g.fillText('-' + n + ' s', pad.l, h - 4);
    g.fillText('now', w - pad.r - 22, h - 4);
    series.forEach((s, k) => {
      g.strokeStyle = colors[k]; g.lineWidth = 2; g.beginPath();
      let started = false;
      s.forEach((v, i) => {
        if (v === null) { started = false; return; }
        const x = pad.l + ((w - pad.l - pad.r) * (i + n - s.length)) / (n - 1);
        const y = pad.t + (h - pad.t - pad.b) * (1 - v / max);
        if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
      });
      g.stroke();
    });
  }

  function render(view) {
    $('description').textContent = view.service.description;
    $('source').textContent = view.self;
    $('leader').textContent = view.leaderId ?? 'none';
    $('term').textContent = num(view.term);
    const leader = view.members.find((m) => m.id === view.leaderId);
    $('commit').textContent = leader?.status?.commitIndex ?? view.members.find((m) => m.id === view.self)?.status?.commitIndex ?? '—';
    const recent = view.activity.slice(-5);
    $('rate').textContent = recent.length ? Math.round(recent.reduce((a, s) => a + s.commits, 0) / recent.length) : '0';
    const maxLag = Math.max(1, ...view.members.map((m) => (typeof m.lag === 'number' ? m.lag : 0)));
    $('members').innerHTML = view.members.map((m) => {
      const s = m.status;
      const role = s ? s.role : 'down';
      const lag = typeof m.lag !== 'number' ? '—' : num(m.lag) + '<span class="lagbar" style="width:' + Math.round((60 * m.lag) / maxLag) + 'px"></span>';
      return '<tr data-member="' + esc(m.id) + '" data-role="' + esc(role) + '">' +
        '<td><b>' + esc(m.id) + '</b>' + (m.voter ? '' : ' <span class="badge role-follower">learner</span>') + '</td>' +
        '<td><span class="badge role-' + esc(role) + '" title="' + esc(m.error ?? '') + '">' + esc(s ? role : 'unreachable') + '</span></td>' +
        '<td>' + num(s?.term) + '</td><td>' + num(s?.commitIndex) + '</td><td>' + num(s?.appliedIndex) + '</td>' +
        '<td>' + num(s?.lastLogIndex) + '</td><td>' + num(s?.snapshotIndex) + '</td><td>' + lag + '</td>' +
        '<td>' + esc(m.address) + '</td><td>' + (m.http ? '<a href="http://' + esc(m.http) + '/">' + esc(m.http) + '</a>' : '—') + '</td></tr>';
    }).join('');
    const select = $('transfer-to');
    const chosen = select.value;
    select.innerHTML = '<option value="">most up-to-date voter</option>' + view.members
      .filter((m) => m.voter && m.id !== view.leaderId)
      .map((m) => '<option value="' + esc(m.id) + '">' + esc(m.id) + '</option>').join('');
    select.value = [...select.options].some((o) => o.value === chosen) ? chosen : '';
    $('elections').innerHTML = view.elections.length === 0 ? '<li>none seen</li>' : view.elections.slice().reverse().map((e) =>
      '<li>' + esc(time(e.at)) + ' · term ' + num(e.term) + ' · ' + (e.leaderId === null ? 'no leader' : 'leader <b>' + esc(e.leaderId) + '</b>') + '</li>').join('');
    drawChart($('throughput'), [view.activity.map((s) => s.commits)], ['#4ba3f2']);
    drawChart($('latency'), [view.activity.map((s) => s.p50Ms), view.activity.map((s) => s.p99Ms)], ['#98c379', '#f2b84b']);
    sources = [own, ...view.members.filter((m) => m.http).map((m) => 'http://' + m.http)]
      .filter((s, i, all) => all.indexOf(s) === i);
  }

  async function tick() {
    const view = await fetchView();
    const conn = $('connection');
    if (view === null) {
      conn.textContent = 'no node answers'; conn.className = 'lost';
      if (last) for (const row of document.querySelectorAll('#members tr')) row.style.opacity = '0.5';
    } else {
      last = view;
      conn.textContent = current === own ? 'live' : 'live (via ' + view.self + ')';
      conn.className = 'live';
      render(view);
    }
    setTimeout(tick, 1000);
  }

  async function act(path, body) {
    const message = $('message');
    // Actions go to the node that served the page only (another origin's node refuses them).
    if (current !== own) {
      message.innerHTML = 'the node of this page does not answer: act from <a href="' + esc(current) + '/">' + esc(current) + '/</a>';
      return;
    }
    message.textContent = 'working…';
    try {
      const res = await fetch(own + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const json = await res.json();
      message.textContent = res.ok ? (json.leaderId ? 'leader is now ' + json.leaderId + ' (term ' + json.term + ')' : 'snapshot at index ' + json.index) : json.error + ': ' + json.message;
    } catch (err) {
      message.textContent = 'failed: ' + err.message;
    }
  }
  $('transfer').addEventListener('click', () => { const to = $('transfer-to').value; act('/v1/leader/transfer', to ? { to } : {}); });
  $('snapshot').addEventListener('click', () => act('/v1/snapshot', {}));
  tick();
})();
</script>
</body>
</html>
`;
}
