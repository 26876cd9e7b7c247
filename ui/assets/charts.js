// AURAX status page: the DOM, formatting and chart helpers app.js uses
// (loaded before it, as the global aurax). No state, no requests; every
// value is written with textContent, never parsed as HTML.
'use strict';
const aurax = (() => {
  const SVGNS = 'http://www.w3.org/2000/svg';
  const W = 300, H = 80; // the charts' viewBox; CSS fixes their size

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
  // sparkline draws vals (one per time in ts, Unix ms; null: a gap) over
  // t0..t1 in a small fixed box, scaled to its own peak, which its label
  // and title say (what names the series, fmt formats a value).
  function sparkline(ts, vals, t0, t1, fmt, what) {
    const SW = 80, SH = 18;
    let top = 0;
    vals.forEach((v, k) => { if (v !== null && ts[k] >= t0 && v > top) top = v; });
    let d = '', pen = false;
    ts.forEach((t, k) => {
      const v = vals[k];
      if (v === null || t < t0) { pen = false; return; }
      const x = ((t - t0) / (t1 - t0) * SW).toFixed(1);
      const y = (SH - 0.5 - (top ? v / top : 0) * (SH - 1)).toFixed(1);
      d += (pen ? 'L' : 'M') + x + ' ' + y + (pen ? '' : 'l0 0');
      pen = true;
    });
    const label = `${what} over the last ${ago(t1 - t0)}: peak ${top ? fmt(top) : 'none'}`;
    const s = svg('svg', {viewBox: `0 0 ${SW} ${SH}`, preserveAspectRatio: 'none', class: 'spark', role: 'img', 'aria-label': label});
    const title = svg('title', {});
    title.textContent = label;
    s.append(title, svg('path', {class: 'line s0', d, 'vector-effect': 'non-scaling-stroke'}));
    return s;
  }

  const ago = (ms) => ms >= 120e3 ? Math.round(ms / 60e3) + 'm' : Math.round(ms / 1e3) + 's';
  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  return {$, el, svg, setText, num, msText, pct, dur, clock, bytes, makeChart, sparkline, ago};
})();
