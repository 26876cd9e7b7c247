// AURAX status page. Hand-written, no dependencies: it polls two JSON
// endpoints next to it (api/state, api/history) every REFRESH_MS, with
// relative URLs so that it works under a proxy's path prefix, and draws
// the charts as SVG. Keys live in this closure only: never in storage,
// cookies or the URL. Every value from the server is written with
// textContent, never parsed as HTML.
'use strict';
(() => {
  const REFRESH_MS = 2000;
  const SVGNS = 'http://www.w3.org/2000/svg';
  const W = 300, H = 80; // the charts' viewBox; CSS fixes their size
  let apiKey = '';
  let points = [];
  let since = 0;
  let replica = '';
  let span = 900e3;
  let interval = 2000;
  let serverNow = 0;
  let lastState = null;
  let timer = 0;

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const svg = (tag, attrs) => {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  };
  const setText = (id, text) => {
    const e = $(id);
    if (e.textContent !== text) e.textContent = text;
  };

  // ---- formatting
  const num = (v, d = 0) => (v === null || v === undefined || Number.isNaN(v)) ? '–' : Number(v).toFixed(d);
  const msText = (v) => {
    if (!v) return '–';
    if (v >= 10000) return (v / 1000).toFixed(1) + ' s';
    if (v >= 100) return v.toFixed(0) + ' ms';
    return v.toFixed(1) + ' ms';
  };
  const pct = (v) => (v * 100).toFixed(1) + ' %';
  const dur = (s) => {
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${String(m).padStart(2, '0')}m`;
    return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  };
  const clock = (t) => new Date(t).toLocaleTimeString([], {hour12: false});
  const bytes = (b) => {
    if (!b) return '0';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return b.toFixed(i ? 1 : 0) + ' ' + u[i];
  };

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
  // A chart is a fixed-size SVG (lines only, stretched to its box) with its
  // numbers as HTML around it: title and current values in the caption, a
  // legend whose line samples match the series' dash patterns, the scale,
  // and an x axis. Series differ by dash pattern as well as colour.
  function makeChart(id, title, labels, opts = {}) {
    const fig = $(id);
    const cap = el('figcaption');
    const capTitle = el('span', 'title', title);
    if (opts.long) capTitle.title = opts.long;
    const capScale = el('span', 'scale');
    cap.append(capTitle, capScale);
    const plot = el('div', 'plot');
    const s = svg('svg', {viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', focusable: 'false'});
    for (const y of [0, H / 2, H]) {
      s.append(svg('line', {x1: 0, x2: W, y1: y, y2: y, class: 'grid', 'vector-effect': 'non-scaling-stroke'}));
    }
    const paths = labels.map((_, i) => {
      const p = svg('path', {class: 'line s' + i, 'vector-effect': 'non-scaling-stroke', d: ''});
      s.append(p);
      return p;
    });
    const marks = el('div', 'markers');
    plot.append(s, marks);
    const legend = el('ul', 'legend');
    const values = labels.map((l, i) => {
      const li = el('li');
      const sample = svg('svg', {viewBox: '0 0 24 6', class: 'sample', 'aria-hidden': 'true'});
      sample.append(svg('line', {x1: 0, x2: 24, y1: 3, y2: 3, class: 'line s' + i}));
      const v = el('span', 'value', '–');
      li.append(sample, el('span', 'label', l + ' '), v);
      legend.append(li);
      return v;
    });
    const axis = el('div', 'xaxis');
    axis.setAttribute('aria-hidden', 'true');
    const ticks = [el('span', '', '−15m'), el('span', '', '−10m'), el('span', '', '−5m'), el('span', '', 'now')];
    axis.append(...ticks);
    fig.replaceChildren(cap, plot, legend, axis);
    return {
      marks,
      // draw(ts, cols, t0, t1, fmt): ts are Unix ms, cols[i][k] the value
      // of series i at ts[k] (null: no data, drawn as a gap), t0..t1 the
      // window drawn. fmt formats a value.
      draw(ts, cols, t0, t1, fmt) {
        const w = t1 - t0;
        ticks.forEach((e, i) => {
          const txt = i === 3 ? 'now' : '−' + ago(w * (3 - i) / 3);
          if (e.textContent !== txt) e.textContent = txt;
        });
        let top = opts.min || 1;
        for (const c of cols) for (const v of c) if (v !== null && v > top) top = v;
        top = niceCeil(top * 1.05);
        capScale.textContent = 'scale 0–' + fmt(top);
        const aria = [];
        cols.forEach((c, i) => {
          let d = '', pen = false, last = null;
          for (let k = 0; k < ts.length; k++) {
            const v = c[k];
            if (v === null || v === undefined || ts[k] < t0) { pen = false; continue; }
            const x = ((ts[k] - t0) / w * W).toFixed(1);
            const y = (H - v / top * H).toFixed(1);
            d += (pen ? 'L' : 'M') + x + ' ' + y + (pen ? '' : 'l0 0'); // a lone point shows as a dot
            pen = true;
            last = v;
          }
          if (paths[i].getAttribute('d') !== d) paths[i].setAttribute('d', d);
          const txt = last === null ? '–' : fmt(last);
          if (values[i].textContent !== txt) values[i].textContent = txt;
          aria.push(`${labels[i]} ${txt}`);
        });
        s.setAttribute('aria-label', `${opts.long || title}, last ${ago(w)}, latest: ${aria.join(', ')}; scale 0 to ${fmt(top)}`);
      },
    };
  }
  const ago = (ms) => ms >= 120e3 ? Math.round(ms / 60e3) + 'm' : Math.round(ms / 1e3) + 's';
  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

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
  // close in time go on alternate rows.
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
      const m = el('span', 'marker ' + dirClass(d) + ' row' + row, dirSym(d) + (i + 1));
      m.style.left = x.toFixed(2) + '%';
      m.title = decisionText(d, i);
      m.dataset.index = String(i + 1);
      out.push(m);
    });
    charts.replicas.marks.replaceChildren(...out);
  }
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
  const ENGINE = {ready: '✔', starting: '…', down: '✖', cooldown: '◷', draining: '⇣'};

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

    setText('engines-from', st.engines_from === 'engines' ? `${st.engines.length} from the engine pool` : 'the configured Ollama');
    rows('engines', st.engines.length ? st.engines.map(engineRow) : [emptyRow(7, 'No engine.')]);

    const q = st.queue;
    setText('q-waiting', `${q.waiting} of ${q.max_waiting} max`);
    setText('q-inflight', `${q.in_flight} / ${q.slots}`);
    setText('q-wait', msText(q.wait_p95_ms));
    setText('q-429', String(q.rejected_1m));

    const tr = st.traffic;
    setText('req-total', String(tr.requests));
    setText('err-total', String(tr.errors));
    modelOptions(tr.models.map((m) => m.name));
    rows('models', [modelRow(Object.assign({}, tr.all, {name: 'all models'}), true)].concat(tr.models.map((m) => modelRow(m))));

    renderScaling(st.scaling);
    renderRAG(st.rag);
    renderGPU(st.gpu);
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

  function engineRow(e) {
    const tr = el('tr', 'engine state-' + e.state);
    tr.dataset.engine = e.name;
    const name = el('div');
    name.append(el('strong', '', e.name), el('br'), el('span', 'sub', `${e.source} · ${e.version ? 'v' + e.version : 'version unknown'}`));
    const state = el('span', 'state ' + e.state, `${ENGINE[e.state] || '?'} ${e.state}${e.ok ? '' : ' (not ok)'}`);
    const loaded = new Set(e.loaded || []);
    const models = el('ul', 'models');
    const names = (e.models || []).slice();
    for (const l of loaded) if (!names.some((n) => same(n, l))) names.push(l);
    for (const n of names) {
      const isLoaded = [...loaded].some((l) => same(n, l));
      models.append(el('li', isLoaded ? 'loaded' : '', (isLoaded ? '● ' : '○ ') + n + (isLoaded ? ' (loaded)' : '')));
    }
    if (!names.length) models.append(el('li', 'sub', 'none'));
    const ewma = Object.entries(e.service_ewma_ms || {}).map(([m, v]) => `${m}: ${msText(v)}`).join(', ') || '–';
    const reason = [e.reason, e.last_error && e.last_error !== e.reason ? 'last error: ' + e.last_error : ''].filter(Boolean).join(' · ') || '–';
    return cells(tr, [name, state, models, `${e.in_flight} / ${e.slots}`, ewma, `${e.requests} / ${e.errors}`, reason],
      [false, false, false, true, true, true, false]);
  }
  const same = (a, b) => a.replace(/:latest$/, '') === b.replace(/:latest$/, '');

  function modelRow(m, total) {
    const tr = el('tr', total ? 'total' : '');
    return cells(tr, [m.name, String(m.requests), String(m.errors), num(m.rps, 2),
      `${msText(m.p50_ms)} / ${msText(m.p95_ms)}`, `${msText(m.ttft_p50_ms)} / ${msText(m.ttft_p95_ms)}`, pct(m.error_rate)],
    [false, true, true, true, true, true, true]);
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
    rows('collections', cs.length ? cs.map((c) => cells(el('tr'), [c.name, String(c.dimension), c.distance, String(c.points), c.embed_model || '–'],
      [false, true, false, true, false])) : [emptyRow(5, r.enabled ? 'No collection.' : '–')]);
  }

  function renderGPU(g) {
    setText('gpu-msg', g.available ? '' : 'No GPU: ' + (g.reason || 'not available'));
    const ds = g.devices || [];
    rows('gpus', ds.length ? ds.map((d) => cells(el('tr'), [`${d.index} ${d.name || ''}`, d.error ? 'error' : num(d.utilization_percent, 0) + ' %',
      `${bytes(d.memory_used_bytes)} / ${bytes(d.memory_total_bytes)}`], [false, true, true])) : [emptyRow(3, '–')]);
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
