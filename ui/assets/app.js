// AURAX status page. Hand-written, no dependencies: it polls two JSON
// endpoints next to it (api/state, api/history) every REFRESH_MS, with
// relative URLs so that it works under a proxy's path prefix, and draws
// the charts as SVG (with charts.js). Keys live in this closure only: never in storage,
// cookies or the URL. Every value from the server is written with
// textContent, never parsed as HTML.
'use strict';
(() => {
  const REFRESH_MS = 2000;
  let apiKey = '';
  let points = [];
  let since = 0;
  let replica = '';
  let span = 900e3;
  let interval = 2000;
  let serverNow = 0;
  let lastState = null;
  let timer = 0;
  const {$, el, setText, num, msText, pct, dur, clock, bytes, makeChart, sparkline, ago} = aurax; // charts.js

  // ---- requests
  class HTTPError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  async function call(path, key, opts = {}) {
    const headers = {Accept: 'application/json'};
    if (key) headers.Authorization = 'Bearer ' + key;
    if (opts.body) headers['Content-Type'] = 'application/json';
    const r = await fetch(path, {method: opts.method || 'GET', headers, body: opts.body, cache: 'no-store', credentials: 'omit'});
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) {
      let msg = r.status + ' ' + r.statusText;
      if (body && body.error) msg = typeof body.error === 'string' ? body.error : (body.error.message || msg);
      throw new HTTPError(r.status, msg);
    }
    return body;
  }

  // ---- charts
  const fixed = (d) => (v) => num(v, d);
  const rate = (v) => num(v, v >= 100 ? 0 : (v >= 10 ? 1 : 2));
  const charts = {
    rps: makeChart('c-rps', 'Requests/s', ['req/s']),
    lat: makeChart('c-lat', 'Latency', ['p50', 'p95']),
    ttft: makeChart('c-ttft', 'TTFT', ['p50', 'p95'], {long: 'Time to first token'}),
    err: makeChart('c-err', 'Error rate', ['errors']),
    queue: makeChart('c-queue', 'Queue', ['waiting', 'in flight', 'slots']),
    replicas: makeChart('c-replicas', 'Replicas', ['current', 'desired']),
  };

  // The window: the last 15 minutes, or since the first point when this
  // AURAX has been up for less (at least a minute), so that a restarted
  // replica's charts fill their width.
  function chartWindow() {
    const t1 = serverNow || (points.length ? points[points.length - 1].t : Date.now());
    let t0 = t1 - span;
    if (points.length) t0 = Math.max(t0, points[0].t - interval);
    return [Math.min(t0, t1 - 60e3), t1];
  }

  function drawCharts() {
    const model = $('model').value;
    const [t0, t1] = chartWindow();
    setText('traffic-window', 'last ' + ago(t1 - t0));
    const ts = points.map((p) => p.t);
    const pick = (p) => {
      if (!model) return p.all;
      return (p.models || []).find((m) => m.name === model) || null;
    };
    const series = (f, zero) => points.map((p) => {
      const m = pick(p);
      if (!m || !m.n) return zero ? 0 : null;
      return f(m);
    });
    charts.rps.draw(ts, [series((m) => m.rps, true)], t0, t1, rate);
    charts.lat.draw(ts, [series((m) => m.p50_ms), series((m) => m.p95_ms)], t0, t1, msText);
    charts.ttft.draw(ts, [series((m) => m.ttft_p50_ms || null), series((m) => m.ttft_p95_ms || null)], t0, t1, msText);
    charts.err.draw(ts, [series((m) => m.errors / m.n * 100)], t0, t1, (v) => num(v, 1) + ' %');
    charts.queue.draw(ts, [points.map((p) => p.waiting), points.map((p) => p.in_flight), points.map((p) => p.slots)], t0, t1, fixed(0));
    charts.replicas.draw(ts, [points.map((p) => p.replicas ? p.replicas.current : null),
      points.map((p) => p.replicas ? p.replicas.desired : null)], t0, t1, fixed(0));
    drawMarkers(t0, t1);
  }

  // Decision markers sit on the replica chart at the moment each decision
  // was taken, numbered like the timeline below it; labels of decisions
  // close in time go on alternate rows. The newest one also says its rule
  // (or reason) on a row above them, pointing left when it is on the
  // right half; every marker's title has its whole text.
  function drawMarkers(t0, t1) {
    const ds = (lastState && lastState.scaling && lastState.scaling.decisions) || [];
    const out = [];
    let lastX = -100, row = 0;
    ds.forEach((d, i) => {
      const t = Date.parse(d.time);
      if (t < t0 || t > t1 + 5000) return;
      const x = Math.min(100, (t - t0) / (t1 - t0) * 100);
      row = x - lastX < 4 ? (row + 1) % 2 : 0;
      lastX = x;
      const newest = i === ds.length - 1;
      const m = el('span', 'marker ' + dirClass(d) + ' row' + (newest ? 2 : row) + (newest && x > 50 ? ' flip' : ''), dirSym(d) + (i + 1));
      if (newest) m.append(el('span', 'rule', ' ' + ruleText(d)));
      m.style.left = x.toFixed(2) + '%';
      m.title = decisionText(d, i);
      m.dataset.index = String(i + 1);
      out.push(m);
    });
    charts.replicas.marks.replaceChildren(...out);
  }
  const ruleText = (d) => [d.reason, d.rule].filter(Boolean).join(': ') || d.note || `${d.current} → ${d.desired}`;
  const dirSym = (d) => d.result === 'held' ? '■' : (d.direction === 'down' ? '▼' : (d.direction === 'up' ? '▲' : '■'));
  const dirClass = (d) => d.result === 'held' ? 'held' : (d.direction || 'none');
  function decisionText(d, i) {
    let s = `#${i + 1} ${clock(Date.parse(d.time))} ${d.direction} ${d.current} → ${d.desired} · ${d.result}`;
    if (d.reason) s += ` · ${d.reason}`;
    if (d.rule) s += `: ${d.rule}`;
    if (d.note) s += ` · ${d.note}`;
    if (d.error) s += ` · error: ${d.error}`;
    return s;
  }

  // ---- rendering the state
  const STATUS = {ok: ['✔', 'OK'], degraded: ['▲', 'DEGRADED'], down: ['✖', 'DOWN'], unknown: ['?', 'UNKNOWN']};
  // The pool's engine states: a symbol and a word each (readable without
  // colour), and what the state means for requests.
  const ENGINE = {
    ready: ['✔', 'serving'],
    unknown: ['?', 'not probed yet; routable'],
    starting: ['◌', 'joining: no requests yet'],
    draining: ['⇣', 'no new requests'],
    cooldown: ['◷', 'sits out after a failed request'],
    down: ['✖', 'probed again with backoff'],
  };

  function render(st) {
    lastState = st;
    const [sym, word] = STATUS[st.status] || STATUS.unknown;
    const badge = $('status');
    badge.className = 'badge ' + (STATUS[st.status] ? st.status : 'unknown');
    const symEl = badge.querySelector('.sym');
    if (symEl.textContent !== sym) symEl.textContent = sym; // a live region: change it only when it changes
    setText('status-text', word);
    setText('version', st.version || '–');
    setText('uptime', st.uptime_s ? dur(st.uptime_s) : '–');
    setText('draining', st.draining ? 'yes' : 'no');
    setText('replica', st.replica || '–');
    setText('updated', clock(Date.parse(st.time)));
    document.title = `AURAX ${word}`;

    const reasons = st.reasons.length ? st.reasons : ['All checks pass.'];
    rows('reasons', reasons.map((r) => el('li', '', r)));

    setText('engines-count', engineCounts(st.engines));
    rows('engines', st.engines.length ? st.engines.flatMap(engineRows) : [emptyRow(6, 'No engine in the pool.')]);

    const q = st.queue;
    setText('q-waiting', `${q.waiting} of ${q.max_waiting} max`);
    setText('q-inflight', `${q.in_flight} / ${q.slots}`);
    setText('q-wait', msText(q.wait_p95_ms));
    setText('q-429', String(q.rejected_1m));

    const tr = st.traffic;
    setText('req-total', String(tr.requests));
    setText('err-total', String(tr.errors));
    modelOptions(tr.models.map((m) => m.name));
    rows('models', [modelRow(Object.assign({}, tr.all, {name: ''}), true)].concat(tr.models.map((m) => modelRow(m))));

    renderScaling(st.scaling);
    renderRAG(st.rag);
    renderGPU(st.gpu);
  }

  // "2 in the pool: 1 ready, 1 draining", the states in ENGINE's order
  function engineCounts(es) {
    const n = {};
    for (const e of es) n[e.state] = (n[e.state] || 0) + 1;
    const parts = Object.keys(ENGINE).filter((k) => n[k]).map((k) => `${n[k]} ${k}`);
    for (const k in n) if (!ENGINE[k]) parts.push(`${n[k]} ${k}`);
    return `${es.length} in the pool` + (parts.length ? ': ' + parts.join(', ') : '');
  }

  function rows(id, children) { $(id).replaceChildren(...children); }
  function emptyRow(cols, text) {
    const tr = el('tr');
    const td = el('td', 'empty', text);
    td.colSpan = cols;
    tr.append(td);
    return tr;
  }
  function cells(tr, vals, numeric) {
    vals.forEach((v, i) => {
      const td = el('td', numeric && numeric[i] ? 'num' : '');
      if (v instanceof Node) td.append(v); else td.textContent = v;
      tr.append(td);
    });
    return tr;
  }

  // An engine is a row, and a second one saying why when the pool gives a
  // reason or the engine has failed a request: errors are long, and a
  // column of their own would push the table past a laptop's width.
  const ENGINE_COLS = ['Engine', 'State', 'Models', 'In flight / slots', 'Service EWMA', 'Requests / errors'];
  function engineRows(e) {
    const tr = el('tr', 'engine state-' + e.state);
    tr.dataset.engine = e.name;
    tr.dataset.state = e.state;
    const name = el('div');
    name.append(el('strong', '', e.name), el('br'), el('span', 'sub', `${e.source} · ${e.version ? 'v' + e.version : 'version unknown'}`));
    const [sym, means] = ENGINE[e.state] || ['?', 'a state this page does not know'];
    const state = el('div');
    state.append(el('span', 'state ' + e.state, `${sym} ${e.state}`), el('br'), el('span', 'sub', means));
    for (const p of e.pulls || []) {
      const what = p.active ? `pulling ${p.model} ${num(p.percent, 0)} %` : (p.error ? `pull of ${p.model} failed` : '');
      if (what) state.append(el('br'), el('span', 'sub', what));
    }
    const loaded = new Set(e.loaded || []);
    const models = el('ul', 'models');
    const names = (e.models || []).slice();
    for (const l of loaded) if (!names.some((n) => same(n, l))) names.push(l);
    for (const n of names) {
      const isLoaded = [...loaded].some((l) => same(n, l));
      const li = el('li', isLoaded ? 'loaded' : '', (isLoaded ? '● ' : '○ ') + short(n) + (isLoaded ? ' (loaded)' : ''));
      li.title = n;
      models.append(li);
    }
    if (!names.length) models.append(el('li', 'sub', 'none'));
    const slots = el('div');
    slots.append(document.createTextNode(`${e.in_flight} / ${e.slots}`));
    if (e.parallel && e.parallel !== e.slots) slots.append(el('br'), el('span', 'sub', `share of ${e.parallel}`));
    const ewma = el('ul', 'models');
    for (const [m, v] of Object.entries(e.service_ewma_ms || {})) ewma.append(el('li', '', `${short(m)}: ${msText(v)}`));
    if (!ewma.children.length) ewma.append(el('li', '', '–'));
    cells(tr, [name, state, models, slots, ewma, `${e.requests} / ${e.errors}`], [false, false, false, true, true, true]);
    ENGINE_COLS.forEach((l, i) => { tr.cells[i].dataset.label = l; }); // the column names of a phone's stacked layout
    const why = engineWhy(e);
    if (!why) return [tr];
    const wtr = el('tr', 'why state-' + e.state);
    wtr.dataset.why = e.name;
    const td = el('td');
    td.colSpan = 5;
    td.append(why);
    wtr.append(el('td'), td);
    return [tr, wtr];
  }
  // Why an engine is not serving, and its last error when that says more;
  // null when there is nothing to say.
  function engineWhy(e) {
    const out = el('p', 'why');
    if (e.reason) out.append(el('strong', '', 'Why: '), document.createTextNode(e.reason));
    if (e.last_error && e.last_error !== e.reason && !(e.reason || '').endsWith(e.last_error)) {
      if (e.reason) out.append(document.createTextNode(' · '));
      const at = e.last_error_at ? ' (' + clock(Date.parse(e.last_error_at)) + ')' : '';
      out.append(el('span', 'sub', `last error${at}: ${e.last_error}`));
    }
    return out.childNodes.length ? out : null;
  }
  // Model names as clients write them: Ollama's implied ":latest" left out
  // (the full name is the item's title).
  const short = (n) => n.replace(/:latest$/, '');
  const same = (a, b) => short(a) === short(b);

  // A model's row: the last minute's figures, and its requests/s and p95
  // over the charts' window as sparklines (m.name '': all models).
  function modelRow(m, total) {
    const tr = el('tr', total ? 'total' : '');
    tr.dataset.model = m.name;
    const [t0, t1] = chartWindow();
    const ts = points.map((p) => p.t);
    const pick = (p) => m.name ? (p.models || []).find((x) => x.name === m.name) : p.all;
    const rps = sparkline(ts, points.map((p) => { const x = pick(p); return x ? x.rps : 0; }), t0, t1, rate, 'requests/s');
    const p95 = sparkline(ts, points.map((p) => { const x = pick(p); return x && x.n ? x.p95_ms : null; }), t0, t1, msText, 'p95 latency');
    return cells(tr, [m.name || 'all models', `${m.requests} / ${m.errors}`, withSpark(num(m.rps, 2), rps),
      withSpark(`${msText(m.p50_ms)} / ${msText(m.p95_ms)}`, p95), `${msText(m.ttft_p50_ms)} / ${msText(m.ttft_p95_ms)}`, pct(m.error_rate)],
    [false, true, true, true, true, true]);
  }
  function withSpark(text, spark) {
    const d = el('div', 'withspark');
    d.append(spark, el('span', '', text));
    return d;
  }

  function modelOptions(names) {
    const sel = $('model');
    const have = [...sel.options].slice(1).map((o) => o.value);
    if (have.join('\n') === names.join('\n')) return;
    const cur = sel.value;
    const opts = [el('option', '', 'all models')];
    opts[0].value = '';
    for (const n of names) {
      const o = el('option', '', n);
      o.value = n;
      opts.push(o);
    }
    sel.replaceChildren(...opts);
    sel.value = names.includes(cur) ? cur : '';
  }

  function renderScaling(sc) {
    $('s-none').hidden = !!sc;
    $('s-body').hidden = !sc;
    if (!sc) return;
    setText('s-policy', sc.policy);
    setText('s-mode', sc.mode);
    setText('s-provider', sc.dry_run ? `${sc.provider} (dry run)` : sc.provider);
    setText('s-leader', sc.is_leader ? `this replica (${sc.leader || 'alone'})` : `${sc.leader || 'unknown'} (this one follows)`);
    setText('s-replicas', `${sc.current} / ${sc.desired}`);
    setText('s-bounds', `${sc.min} / ${sc.max}`);
    const cd = sc.cooldowns;
    setText('s-cooldowns', `up ${cd.up_remaining_s ? dur(cd.up_remaining_s) + ' left' : 'ready'} · down ${cd.down_remaining_s ? dur(cd.down_remaining_s) + ' left' : 'ready'}`);
    setText('s-paused', sc.paused ? '⏸ paused: decisions are recorded, not applied' : '▶ running');
    $('s-paused').className = sc.paused ? 'paused' : '';
    const dry = $('s-dryrun');
    dry.hidden = !sc.dry_run;
    if (sc.dry_run) setText('s-dryrun', 'Dry run: ' + sc.dry_run);
    const man = $('s-manual');
    man.hidden = !sc.manual;
    if (sc.manual) setText('s-manual', `Manual override: ${sc.manual.replicas} replicas until ${clock(Date.parse(sc.manual.until))} (${sc.manual.reason})`);
    const ds = sc.decisions || [];
    const items = ds.map((d, i) => {
      const li = el('li', 'decision ' + dirClass(d));
      li.dataset.index = String(i + 1);
      li.append(el('span', 'sym', dirSym(d) + (i + 1)), document.createTextNode(' ' + decisionText(d, i).replace(/^#\d+ /, '')));
      return li;
    }).reverse();
    rows('timeline', items.length ? items : [el('li', 'sub', 'No decision changed the count in the last 15 minutes.')]);
    const rep = $('replicas');
    rep.min = String(sc.min);
    rep.max = String(sc.max);
    if (rep.value === '') rep.value = String(sc.desired);
    setText('admin-note', sc.admin ? 'need the admin key' : 'disabled: no admin key is configured (AURAX_ADMIN_KEY)');
  }

  function renderRAG(r) {
    setText('rag-store', r.store ? `(${r.store})` : '');
    let msg = '';
    if (!r.enabled) msg = 'Retrieval is off.';
    else if (!r.ok && r.error) msg = '✖ ' + r.error;
    else if (r.error) msg = r.error;
    setText('rag-msg', msg);
    const cs = r.collections || [];
    rows('collections', cs.length ? cs.map((c) => {
      const name = el('div');
      name.append(el('strong', '', c.name), el('br'), el('span', 'sub', `${c.distance} · ${c.embed_model || 'no embedding model'}`));
      return cells(el('tr'), [name, String(c.dimension), String(c.points)], [false, true, true]);
    }) : [emptyRow(3, r.enabled ? 'No collection.' : '–')]);
  }

  function renderGPU(g) {
    setText('gpu-msg', g.available ? '' : 'No GPU: ' + (g.reason || 'not available'));
    const ds = g.devices || [];
    rows('gpus', ds.length ? ds.map((d) => {
      const name = el('div');
      name.append(el('strong', '', `${d.index} ${d.name || ''}`));
      if (d.error) name.append(el('br'), el('span', 'sub', '✖ ' + d.error));
      return cells(el('tr'), [name, num(d.utilization_percent, 0) + ' %', `${bytes(d.memory_used_bytes)} / ${bytes(d.memory_total_bytes)}`],
        [false, true, true]);
    }) : [emptyRow(3, '–')]);
  }

  // ---- the loop
  function showLogin(msg) {
    $('login').hidden = false;
    $('main').hidden = true;
    setText('login-msg', msg);
    setText('conn', '');
    $('api-key').focus();
  }

  async function tick() {
    clearTimeout(timer);
    try {
      const st = await call('api/state', apiKey);
      if (st.replica !== replica) { // another process answered: its history is not ours
        replica = st.replica;
        points = [];
        since = 0;
      }
      const h = await call('api/history?since=' + since, apiKey);
      span = h.span_s * 1000;
      interval = h.interval_s * 1000;
      serverNow = h.now;
      for (const p of h.points) {
        if (p.t > since) { points.push(p); since = p.t; }
      }
      while (points.length && points[0].t < serverNow - span) points.shift();
      $('login').hidden = true;
      $('main').hidden = false;
      render(st);
      drawCharts();
      setText('conn', '● live');
      $('conn').className = 'conn live';
    } catch (e) {
      if (e.status === 401) { // polling resumes when a key is entered
        showLogin(apiKey ? 'That key was refused: ' + e.message : '');
        return;
      } else {
        setText('conn', '✖ no answer (' + e.message + '): showing the last data, retrying');
        $('conn').className = 'conn lost';
      }
    }
    timer = setTimeout(tick, REFRESH_MS);
  }

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    apiKey = $('api-key').value.trim();
    $('api-key').value = '';
    setText('login-msg', 'Checking…');
    tick();
  });
  $('model').addEventListener('change', drawCharts);

  // The buttons call the admin endpoints next to the page (../v1/…) with
  // the admin key typed here; the server decides, and its answer is shown.
  async function admin(path, body, what) {
    const key = $('admin-key').value.trim();
    setText('admin-msg', what + '…');
    try {
      await call('../v1/scaling/' + path, key, {method: 'POST', body: body ? JSON.stringify(body) : undefined});
      setText('admin-msg', '✔ ' + what + ': done');
      $('admin-msg').className = 'msg ok';
      tick();
    } catch (e) {
      setText('admin-msg', `✖ ${what} refused (${e.status || 'no answer'}): ${e.message}`);
      $('admin-msg').className = 'msg bad';
    }
  }
  $('admin').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const n = parseInt($('replicas').value, 10);
    admin('replicas', {replicas: n, reason: $('reason').value, ttl: $('ttl').value}, `Set ${n} replicas`);
  });
  $('pause').addEventListener('click', () => admin('pause', null, 'Pause'));
  $('resume').addEventListener('click', () => admin('resume', null, 'Resume'));

  tick();
})();
