/* alphatrace dashboard charts: small hand-written SVG charts, no dependencies, works offline.
 *
 * Every element with data-chart="KIND" data-src="/v1/dash/..." is filled from that JSON
 * document: fetched from the dashboard, or read from the report's embedded
 * <script type="application/json" id="dash-data"> (keyed by the same URL). Text from the data
 * only ever goes through textContent / setAttribute, never HTML parsing.
 * After drawing, the element gets data-rendered="true" and data-points="N".
 */
(function () {
  'use strict';

  var NS = 'http://www.w3.org/2000/svg';
  var W = 760, H = 260;  // W follows each chart's on-screen width, so text stays 11px
  var M = { l: 66, r: 18, t: 16, b: 34 };
  var COLORS = ['#2f5bd3', '#e07b00', '#1f7a4d', '#8e44ad', '#b42318', '#0e7490'];
  var MARK_COLORS = { kill: '#b42318', promote: '#1f7a4d', revive: '#2f5bd3', change: '#8e44ad' };

  // ---- data ---------------------------------------------------------------------------------
  var embeddedNode = document.getElementById('dash-data');
  var EMBEDDED = embeddedNode ? JSON.parse(embeddedNode.textContent) : null;
  var requests = {};

  function load(src, fresh) {
    if (EMBEDDED) {
      return Object.prototype.hasOwnProperty.call(EMBEDDED, src)
        ? Promise.resolve(EMBEDDED[src]) : Promise.reject(new Error('no data for ' + src));
    }
    if (fresh || !requests[src]) {
      requests[src] = fetch(src, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then(function (r) {
          if (!r.ok) { throw new Error('HTTP ' + r.status); }
          return r.json();
        });
    }
    return requests[src];
  }

  // ---- svg helpers --------------------------------------------------------------------------
  function node(tag, attrs, parent, text) {
    var e = document.createElementNS(NS, tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] !== null && attrs[k] !== undefined) { e.setAttribute(k, String(attrs[k])); }
      });
    }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (parent) { parent.appendChild(e); }
    return e;
  }

  function frame(el, height) {
    while (el.firstChild) { el.removeChild(el.firstChild); }
    W = el.clientWidth > 320 ? Math.round(el.clientWidth) : 760;
    el.setAttribute('data-w', String(W));
    var svg = node('svg', { viewBox: '0 0 ' + W + ' ' + (height || H), role: 'img',
      preserveAspectRatio: 'xMidYMid meet' }, el);
    return svg;
  }

  function finite(v) { return typeof v === 'number' && isFinite(v); }

  function extent(arrays) {
    var lo = Infinity, hi = -Infinity;
    arrays.forEach(function (a) {
      for (var i = 0; i < a.length; i++) {
        if (finite(a[i])) { if (a[i] < lo) { lo = a[i]; } if (a[i] > hi) { hi = a[i]; } }
      }
    });
    if (lo === Infinity) { return [0, 1]; }
    if (lo === hi) { var pad = Math.abs(lo) * 0.1 || 1; return [lo - pad, hi + pad]; }
    return [lo, hi];
  }

  function scale(d0, d1, r0, r1) {
    var k = (r1 - r0) / (d1 - d0);
    return function (v) { return r0 + (v - d0) * k; };
  }

  function niceStep(span, n) {
    var raw = span / Math.max(n, 1);
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  function ticks(lo, hi, n) {
    var step = niceStep(hi - lo, n), out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
      out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    }
    return out;
  }

  function fmtNum(v) {
    if (!finite(v)) { return '—'; }
    var a = Math.abs(v), sign = v < 0 ? '\u2212' : '';
    if (a >= 1e9) { return sign + (a / 1e9).toFixed(1) + 'G'; }
    if (a >= 1e6) { return sign + (a / 1e6).toFixed(1) + 'M'; }
    if (a >= 1e4) { return sign + (a / 1e3).toFixed(0) + 'k'; }
    if (a >= 1e3) { return sign + (a / 1e3).toFixed(1) + 'k'; }  // one style from a thousand up
    if (a >= 100) { return sign + a.toFixed(0); }
    if (a >= 1) { return sign + a.toFixed(a >= 10 ? 1 : 2); }
    if (a === 0) { return '0'; }
    if (a >= 0.001) { return sign + a.toFixed(4); }
    return sign + a.toExponential(1);
  }

  // Whole dollars with thousands separators: every bar label in one format ("$9,432", "$18,120").
  function fmtUsd(v) {
    if (!finite(v)) { return '—'; }
    var a = Math.round(Math.abs(v)), sign = v < 0 ? '\u2212' : '';
    return sign + '$' + String(a).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }

  function pad2(n) { return (n < 10 ? '0' : '') + n; }

  function fmtTime(ms, span) {
    var d = new Date(ms);
    var day = d.getUTCFullYear() + '-' + pad2(d.getUTCMonth() + 1) + '-' + pad2(d.getUTCDate());
    if (span > 3 * 86400000) { return day; }
    return pad2(d.getUTCMonth() + 1) + '-' + pad2(d.getUTCDate()) + ' ' +
      pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes());
  }

  function done(el, points) {
    el.setAttribute('data-rendered', 'true');
    el.setAttribute('data-points', String(points));
  }

  function fail(el, err) {
    while (el.firstChild) { el.removeChild(el.firstChild); }
    var p = document.createElement('p');
    p.className = 'error';
    p.textContent = 'chart unavailable: ' + (err && err.message ? err.message : String(err));
    el.appendChild(p);
    el.setAttribute('data-rendered', 'error');
  }

  // ---- line chart ---------------------------------------------------------------------------
  // spec: {x: [ms], series: [{name, y: [..], color}], marks: [{x, label, kind}], log, unit}
  function lineChart(el, spec) {
    var svg = frame(el);
    var x = spec.x;
    var ys = spec.series.map(function (s) {
      return s.y.map(function (v) {
        if (!finite(v)) { return null; }
        if (spec.log) { return v > 0 ? Math.log10(v) : null; }
        return v;
      });
    });
    var xs = x.filter(finite).concat((spec.marks || []).map(function (m) { return m.x; }).filter(finite));
    var xd = extent([xs]);
    var yd = extent(ys);
    if (!spec.log && yd[0] > 0 && yd[0] < (yd[1] - yd[0]) * 0.5) { yd[0] = 0; }
    var sx = scale(xd[0], xd[1], M.l, W - M.r);
    var sy = scale(yd[0], yd[1], H - M.b, M.t);
    var grid = node('g', { 'class': 'grid axis' }, svg);
    var yt = spec.log ? logTicks(yd[0], yd[1]) : ticks(yd[0], yd[1], 5);
    yt.forEach(function (v) {
      node('line', { x1: M.l, x2: W - M.r, y1: sy(v), y2: sy(v) }, grid);
      node('text', { x: M.l - 6, y: sy(v) + 4, 'text-anchor': 'end' }, grid,
        spec.log ? fmtNum(Math.pow(10, v)) : fmtNum(v));
    });
    ticks(xd[0], xd[1], 6).forEach(function (v) {
      node('text', { x: sx(v), y: H - M.b + 16, 'text-anchor': 'middle' }, grid, fmtTime(v, xd[1] - xd[0]));
    });
    if (!spec.log && yd[0] < 0 && yd[1] > 0) {
      node('line', { 'class': 'zero', x1: M.l, x2: W - M.r, y1: sy(0), y2: sy(0), stroke: '#98a2b3' }, svg);
    }
    var total = 0;
    var plot = node('g', { 'class': 'series-group' }, svg);
    spec.series.forEach(function (s, k) {
      var d = [], pen = false, n = 0;
      for (var i = 0; i < x.length; i++) {
        var v = ys[k][i];
        if (v === null || !finite(x[i])) { pen = false; continue; }
        d.push((pen ? 'L' : 'M') + sx(x[i]).toFixed(1) + ' ' + sy(v).toFixed(1));
        pen = true;
        n += 1;
      }
      var color = s.color || COLORS[k % COLORS.length];
      var attrs = { 'class': 'series', 'data-series': s.name, d: d.join(''), fill: 'none',
        stroke: color, 'stroke-width': s.width || 1.6 };
      if (s.dash) { attrs['stroke-dasharray'] = s.dash; }
      var path = node('path', attrs, plot);
      path.setAttribute('data-points', String(n));
      if (n === 1) {  // a lone point has no line: show it
        node('circle', { cx: sx(x[ys[k].findIndex(function (v) { return v !== null; })]),
          cy: sy(ys[k].filter(function (v) { return v !== null; })[0]), r: 3, fill: color }, plot);
      }
      total += n;
    });
    var marks = node('g', { 'class': 'marks' }, svg);
    (spec.marks || []).forEach(function (m, i) {
      if (!finite(m.x)) { return; }
      var g = node('g', { 'class': 'mark', 'data-kind': m.kind }, marks);
      var color = MARK_COLORS[m.kind] || MARK_COLORS.change;
      var px = sx(m.x);
      node('line', { x1: px, x2: px, y1: M.t, y2: H - M.b, stroke: color, 'stroke-width': 1.2 }, g);
      var right = px > W - M.r - 90;
      node('text', { x: right ? px - 3 : px + 3, y: M.t + 10 + (i % 3) * 11, fill: color,
        'text-anchor': right ? 'end' : 'start' }, g, m.label);
      node('title', null, g, m.title || m.label);
    });
    var legend = node('g', { 'class': 'legend' }, svg);
    var lx = M.l + 8;
    spec.series.forEach(function (s, k) {
      var color = s.color || COLORS[k % COLORS.length];
      var item = node('g', { 'class': 'legend-item', 'data-series': s.name, 'data-dash': s.dash || '' }, legend);
      var sample = { x1: lx, x2: lx + 18, y1: M.t - 9, y2: M.t - 9, stroke: color, 'stroke-width': s.width || 1.6 };
      if (s.dash) { sample['stroke-dasharray'] = s.dash; }
      node('line', sample, item);  // the legend draws each line as the chart does (dash and width)
      node('text', { x: lx + 22, y: M.t - 6 }, item, s.name);
      lx += 32 + 6.5 * String(s.name).length;
    });
    hover(svg, x, spec, ys, sx, sy);
    done(el, total);
  }

  function logTicks(lo, hi) {
    var a = Math.floor(lo), b = Math.ceil(hi), step = Math.max(1, Math.ceil((b - a) / 5)), out = [];
    for (var v = a; v <= b; v += step) { if (v >= lo - 1e-9 && v <= hi + 1e-9) { out.push(v); } }
    if (!out.length) { out.push(lo); }
    return out;
  }

  function hover(svg, x, spec, ys, sx, sy) {
    var guide = node('line', { 'class': 'guide', y1: M.t, y2: H - M.b, stroke: '#98a2b3', visibility: 'hidden' }, svg);
    var label = node('text', { 'class': 'label', x: W - M.r, y: H - 4, 'text-anchor': 'end' }, svg);
    var overlay = node('rect', { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b,
      fill: 'transparent' }, svg);
    overlay.addEventListener('mousemove', function (ev) {
      var box = svg.getBoundingClientRect();
      var px = (ev.clientX - box.left) * (W / box.width);
      var best = -1, bestD = Infinity;
      for (var i = 0; i < x.length; i++) {
        var dd = Math.abs(sx(x[i]) - px);
        if (dd < bestD) { bestD = dd; best = i; }
      }
      if (best < 0) { return; }
      guide.setAttribute('x1', sx(x[best]));
      guide.setAttribute('x2', sx(x[best]));
      guide.setAttribute('visibility', 'visible');
      var parts = [fmtTime(x[best], 0)];
      spec.series.forEach(function (s, k) {
        var v = ys[k][best];
        parts.push(s.name + ' ' + (v === null ? '—' : fmtNum(spec.log ? Math.pow(10, v) : v)));
      });
      if (spec.ids) { parts.push(spec.ids[best]); }
      label.textContent = parts.join('  ·  ');
    });
    overlay.addEventListener('mouseleave', function () {
      guide.setAttribute('visibility', 'hidden');
      label.textContent = '';
    });
  }

  // ---- horizontal bars ----------------------------------------------------------------------
  // spec: {labels: [..], values: [..]}
  function barChart(el, spec) {
    var n = spec.labels.length, row = 22, top = 8;
    var height = Math.max(60, top * 2 + n * row + 20);
    var svg = frame(el, height);
    var left = Math.min(260, Math.round(W * 0.3));
    var d = extent([spec.values.concat([0])]);
    var sx = scale(d[0], d[1], left + (d[0] < 0 ? 64 : 0), W - 70);
    var g = node('g', { 'class': 'bars' }, svg);
    var axis = node('g', { 'class': 'axis' }, svg);
    node('line', { x1: sx(0), x2: sx(0), y1: top, y2: top + n * row, stroke: '#98a2b3' }, axis);
    var drawn = 0;
    spec.labels.forEach(function (name, i) {
      var v = spec.values[i];
      var y = top + i * row;
      node('text', { x: left - 8, y: y + 15, 'text-anchor': 'end', 'class': 'label' }, g, name);
      if (!finite(v)) { return; }
      var x0 = sx(Math.min(0, v)), x1 = sx(Math.max(0, v));
      var bar = node('rect', { 'class': 'bar', x: x0, y: y + 4, width: Math.max(1, x1 - x0), height: row - 8,
        fill: v >= 0 ? '#1f7a4d' : '#b42318', 'data-label': name, 'data-value': v }, g);
      var text = (spec.format || fmtNum)(v);
      node('title', null, bar, name + ': ' + text);
      node('text', { x: v >= 0 ? x1 + 4 : x0 - 4, y: y + 15, 'text-anchor': v >= 0 ? 'start' : 'end',
        'class': 'label value' }, g, text);
      drawn += 1;
    });
    done(el, drawn);
  }

  // ---- waterfall ----------------------------------------------------------------------------
  // steps: [{step, usd, cumulative_usd}], the last one the total
  function waterfall(el, steps) {
    var svg = frame(el);
    var n = steps.length;
    var lows = [0], highs = [0], acc = 0;
    steps.forEach(function (s, i) {
      var v = finite(s.usd) ? s.usd : 0;
      var last = i === n - 1;
      var start = last ? 0 : acc, end = last ? v : acc + v;
      if (!last) { acc = end; }
      lows.push(Math.min(start, end));
      highs.push(Math.max(start, end));
    });
    var d = extent([lows, highs]);
    var sy = scale(d[0], d[1], H - M.b, M.t);
    var bw = (W - M.l - M.r) / Math.max(n, 1);
    var grid = node('g', { 'class': 'grid axis' }, svg);
    ticks(d[0], d[1], 5).forEach(function (v) {
      node('line', { x1: M.l, x2: W - M.r, y1: sy(v), y2: sy(v) }, grid);
      node('text', { x: M.l - 6, y: sy(v) + 4, 'text-anchor': 'end' }, grid, fmtNum(v));
    });
    node('line', { x1: M.l, x2: W - M.r, y1: sy(0), y2: sy(0), stroke: '#98a2b3' }, svg);
    var g = node('g', { 'class': 'bars' }, svg);
    var running = 0;
    steps.forEach(function (s, i) {
      var last = i === n - 1;
      var v = finite(s.usd) ? s.usd : 0;
      var start = last ? 0 : running, end = last ? v : running + v;
      if (!last) { running = end; }
      var y0 = sy(Math.max(start, end)), y1 = sy(Math.min(start, end));
      var x = M.l + i * bw + bw * 0.15;
      var fill = last ? (v >= 0 ? '#1f4fbf' : '#7a1b12') : (v >= 0 ? '#1f7a4d' : '#b42318');
      var rect = node('rect', { 'class': 'bar step', 'data-step': s.step, x: x, y: y0, width: bw * 0.7,
        height: Math.max(1, y1 - y0), fill: fill }, g);
      node('title', null, rect, s.step + ': ' + fmtNum(v) + ' USD');
      node('text', { x: x + bw * 0.35, y: H - M.b + 16, 'text-anchor': 'middle', 'class': 'label' }, g,
        String(s.step).replace('_', ' '));
      node('text', { x: x + bw * 0.35, y: y0 - 4, 'text-anchor': 'middle', 'class': 'label' }, g, fmtNum(v));
    });
    done(el, n);
  }

  // ---- scatter ------------------------------------------------------------------------------
  function pnlColor(v, scaleMax) {
    if (!finite(v)) { return '#98a2b3'; }
    var t = Math.min(1, Math.abs(v) / (scaleMax || 1));
    var a = 0.25 + 0.75 * t;
    return v < 0 ? 'rgba(180,35,24,' + a.toFixed(2) + ')' : 'rgba(47,91,211,' + a.toFixed(2) + ')';
  }

  function quantileAbs(values, q) {
    var a = values.filter(finite).map(Math.abs).sort(function (p, r) { return p - r; });
    if (!a.length) { return 1; }
    return a[Math.min(a.length - 1, Math.floor(q * a.length))] || 1;
  }

  function region(predicates, feature) {
    var lo = null, hi = null;
    (predicates || []).forEach(function (p) {
      if (p.feature !== feature || typeof p.value !== 'number') { return; }
      if (p.op === '>') { lo = lo === null ? p.value : Math.max(lo, p.value); }
      if (p.op === '<=') { hi = hi === null ? p.value : Math.min(hi, p.value); }
    });
    return lo === null && hi === null ? null : [lo, hi];
  }

  function scatter(el, doc, xName, yName, rank) {
    var sc = doc.scatter;
    var svg = frame(el, 320);
    var h = 320;
    var xv = sc.values[xName] || [], yv = sc.values[yName] || [];
    var xd = extent([xv]), yd = extent([yv]);
    var sx = scale(xd[0], xd[1], M.l, W - M.r), sy = scale(yd[0], yd[1], h - M.b - 8, M.t);
    var grid = node('g', { 'class': 'grid axis' }, svg);
    ticks(yd[0], yd[1], 5).forEach(function (v) {
      node('line', { x1: M.l, x2: W - M.r, y1: sy(v), y2: sy(v) }, grid);
      node('text', { x: M.l - 6, y: sy(v) + 4, 'text-anchor': 'end' }, grid, fmtNum(v));
    });
    ticks(xd[0], xd[1], 7).forEach(function (v) {
      node('line', { x1: sx(v), x2: sx(v), y1: M.t, y2: h - M.b - 8 }, grid);
      node('text', { x: sx(v), y: h - M.b + 8, 'text-anchor': 'middle' }, grid, fmtNum(v));
    });
    node('text', { 'class': 'label', x: W - M.r, y: h - 6, 'text-anchor': 'end' }, svg, xName + ' →');
    node('text', { 'class': 'label', x: 4, y: M.t - 4 }, svg, '↑ ' + yName);
    var cluster = null;
    doc.clusters.forEach(function (c) { if (c.rank === rank) { cluster = c; } });
    var members = {};
    if (cluster) { cluster.members.forEach(function (i) { members[i] = true; }); }
    if (cluster) {
      var rx = region(cluster.predicates, xName), ry = region(cluster.predicates, yName);
      if (rx || ry) {
        var x0 = rx && rx[0] !== null ? Math.max(M.l, sx(rx[0])) : M.l;
        var x1 = rx && rx[1] !== null ? Math.min(W - M.r, sx(rx[1])) : W - M.r;
        var y0 = ry && ry[1] !== null ? Math.max(M.t, sy(ry[1])) : M.t;
        var y1 = ry && ry[0] !== null ? Math.min(h - M.b - 8, sy(ry[0])) : h - M.b - 8;
        node('rect', { 'class': 'region', x: Math.min(x0, x1), y: Math.min(y0, y1),
          width: Math.abs(x1 - x0), height: Math.abs(y1 - y0), fill: 'rgba(255,196,0,0.18)',
          stroke: '#e0a800', 'stroke-dasharray': '5 3' }, svg);
      }
    }
    var cmax = quantileAbs(sc.pnl, 0.95);
    var pts = node('g', { 'class': 'points' }, svg);
    var drawn = 0, inside = 0;
    for (var i = 0; i < sc.run_id.length; i++) {
      if (!finite(xv[i]) || !finite(yv[i])) { continue; }
      var isIn = !!members[i];
      var c = node('circle', { 'class': isIn ? 'pt in-cluster' : 'pt', cx: sx(xv[i]).toFixed(1),
        cy: sy(yv[i]).toFixed(1), r: isIn ? 3.4 : 2.6, fill: pnlColor(sc.pnl[i], cmax),
        stroke: isIn ? '#111' : null, 'stroke-width': isIn ? 0.9 : null, 'data-run': sc.run_id[i] }, pts);
      node('title', null, c, sc.run_id[i] + ': ' + fmtNum(sc.pnl[i]) + ' bps; ' + xName + ' ' +
        fmtNum(xv[i]) + ', ' + yName + ' ' + fmtNum(yv[i]));
      drawn += 1;
      if (isIn) { inside += 1; }
    }
    if (!EMBEDDED) {
      pts.addEventListener('click', function (ev) {
        var run = ev.target && ev.target.getAttribute && ev.target.getAttribute('data-run');
        if (run) { window.location.href = '/run?id=' + encodeURIComponent(run); }
      });
    }
    el.setAttribute('data-in-cluster', String(inside));
    el.setAttribute('data-x', xName);
    el.setAttribute('data-y', yName);
    el.setAttribute('data-cluster', cluster ? String(rank) : '');
    done(el, drawn);
  }

  function forensicsChart(el, doc) {
    var state = { x: el.getAttribute('data-x') || doc.scatter.x, y: el.getAttribute('data-y') || doc.scatter.y,
      rank: parseInt(el.getAttribute('data-cluster'), 10) || doc.selected };
    function draw() { scatter(el, doc, state.x, state.y, state.rank); }
    el.redraw = draw;
    document.querySelectorAll('select[data-axis]').forEach(function (sel) {
      sel.addEventListener('change', function () { state[sel.getAttribute('data-axis')] = sel.value; draw(); });
    });
    document.querySelectorAll('.cluster-pick').forEach(function (a) {
      a.addEventListener('click', function (ev) {
        ev.preventDefault();
        state.rank = parseInt(a.getAttribute('data-cluster'), 10);
        document.querySelectorAll('li.cluster').forEach(function (li) {
          var on = li.getAttribute('data-rank') === String(state.rank);
          li.classList.toggle('selected', on);
          if (on) { li.setAttribute('aria-current', 'true'); } else { li.removeAttribute('aria-current'); }
        });
        draw();
      });
    });
    draw();
    if (doc.status === 'computing' && !EMBEDDED) {
      setTimeout(function poll() {
        load(el.getAttribute('data-src'), true).then(function (fresh) {
          if (fresh.status === 'computing') { setTimeout(poll, 2000); } else { window.location.reload(); }
        });
      }, 2000);
    }
  }

  // ---- the charts of each page ---------------------------------------------------------------
  function decisionMarks(doc) {
    return doc.marks.map(function (m) {
      return { x: m.t, kind: m.action, label: m.action, title: m.action + ' (' + (m.rule || '') + ') seq ' + m.seq };
    });
  }

  function changeMarks(doc, metric) {
    return doc.changepoints.filter(function (c) { return c.metric === metric; }).map(function (c) {
      return { x: c.t, kind: 'change', label: 'change ' + c.direction,
        title: metric + ' ' + c.direction + ' at run ' + c.run_index + ' (' + c.run_id + ')' };
    });
  }

  var CHARTS = {
    'overview-net': function (el, doc) {
      barChart(el, { labels: doc.agents.map(function (a) { return a.name; }),
        values: doc.agents.map(function (a) { return a.net_usd; }), format: fmtUsd });
    },
    'agent-pnl-bps': function (el, doc) {
      lineChart(el, { x: doc.series.t, ids: doc.series.run_id, series: [{ name: 'cumulative bps', y: doc.series.cum_pnl_bps }],
        marks: decisionMarks(doc).concat(changeMarks(doc, 'mean_pnl_bps')) });
    },
    'agent-pnl-usd': function (el, doc) {
      // net is the wide pale line underneath, trading PnL the dashed one on top: where inference
      // cost is small the two coincide and both stay visible.
      lineChart(el, { x: doc.series.t, ids: doc.series.run_id, series: [
        { name: 'net USD (after inference)', y: doc.series.cum_net_usd, color: '#93b4f5', width: 4 },
        { name: 'trading PnL USD', y: doc.series.cum_pnl_usd, color: '#1d2b53', dash: '6 4', width: 1.6 }],
        marks: decisionMarks(doc) });
    },
    'agent-confidence': function (el, doc) {
      lineChart(el, { x: doc.confidence.t, ids: doc.confidence.run_id, log: true,
        series: [{ name: 'multiplier', y: doc.confidence.multiplier, color: '#8e44ad' }],
        marks: decisionMarks(doc) });
    },
    'agent-latency': function (el, doc) {
      lineChart(el, { x: doc.series.t, ids: doc.series.run_id, series: [{ name: 'latency ms', y: doc.series.mean_latency_ms }],
        marks: changeMarks(doc, 'mean_latency_ms') });
    },
    'agent-tokens': function (el, doc) {
      lineChart(el, { x: doc.series.t, ids: doc.series.run_id, series: [{ name: 'tokens', y: doc.series.tokens_per_run, color: '#0e7490' }],
        marks: changeMarks(doc, 'tokens_per_run') });
    },
    'agent-cost': function (el, doc) {
      lineChart(el, { x: doc.series.t, ids: doc.series.run_id, series: [{ name: 'cost USD', y: doc.series.cost_per_run, color: '#e07b00' }],
        marks: changeMarks(doc, 'cost_per_run') });
    },
    'forensics-scatter': forensicsChart,
    'run-waterfall': function (el, doc) {
      waterfall(el, (doc.explain && doc.explain.waterfall) || []);
    }
  };

  function render(el, fresh) {
    var kind = el.getAttribute('data-chart');
    var src = el.getAttribute('data-src');
    if (!CHARTS[kind]) { fail(el, new Error('unknown chart ' + kind)); return; }
    load(src, fresh).then(function (doc) {
      CHARTS[kind](el, doc);
      if (doc.changepoints_status === 'computing' && !EMBEDDED) {
        setTimeout(function () { render(el, true); }, 2000);
      }
    }).catch(function (err) { fail(el, err); });
  }

  // ---- tables in the report: sort by header, filter by strategy -------------------------------
  function sortable(table) {
    var heads = table.querySelectorAll('th[data-sort]');
    heads.forEach(function (th, col) {
      th.addEventListener('click', function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var desc = th.getAttribute('aria-sort') !== 'descending';
        var numeric = th.getAttribute('data-type') === 'num';
        rows.sort(function (a, b) {
          var va = a.cells[col] ? a.cells[col].getAttribute('data-v') : null;
          var vb = b.cells[col] ? b.cells[col].getAttribute('data-v') : null;
          if (va === null && vb === null) { return 0; }
          if (va === null) { return 1; }
          if (vb === null) { return -1; }
          var r = numeric ? parseFloat(va) - parseFloat(vb) : (va < vb ? -1 : va > vb ? 1 : 0);
          return desc ? -r : r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
        heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
      });
    });
  }

  function strategyFilter(select) {
    select.addEventListener('change', function () {
      var want = select.value;
      document.querySelectorAll('tr[data-strategies]').forEach(function (tr) {
        var names = tr.getAttribute('data-strategies').split('\n');
        tr.classList.toggle('hidden', want !== '' && names.indexOf(want) < 0);
      });
    });
  }

  // A chart drawn while hidden (a report section not yet targeted: Chrome applies the URL's
  // :target only after the scripts ran) got the fallback width; once shown, or when the window
  // is resized, every chart whose on-screen width differs is drawn again, so text stays 11px.
  function refit() {
    document.querySelectorAll('[data-chart][data-w]').forEach(function (el) {
      var w = el.clientWidth;
      if (w > 320 && Math.abs(w - parseFloat(el.getAttribute('data-w'))) > 2) {
        if (el.redraw) { el.redraw(); } else { render(el, false); }
      }
    });
  }

  // ---- the live decision log ----------------------------------------------------------------
  // The decisions page's table (#decision-log[data-live]) gets each record appended after the
  // newest one shown, at its top, from the server's decision stream (Server-Sent Events; the
  // session cookie authenticates it). EventSource resumes by itself with Last-Event-ID.
  function decisionCell(key, rec) {
    var m = rec.metrics;
    switch (key) {
      case 'status': return 'new';
      case 'action': return rec.action + (rec.blocked ? ' blocked' : '');
      case 'rule': return rec.rule || '\u2014';
      case 'metrics':
        return m && typeof m === 'object'
          ? Object.keys(m).sort().map(function (k) { return k + ' ' + m[k]; }).join('  ') : '';
      case 'runs': return Array.isArray(rec.run_ids) ? String(rec.run_ids.length) : '\u2014';
      case 'why': return rec.cascade_from || rec.reason || '\u2014';
      case 'hash': return String(rec.hash || '').slice(0, 12);
      default: return rec[key] === null || rec[key] === undefined ? '\u2014' : String(rec[key]);
    }
  }

  function liveLog(box) {
    if (typeof window.EventSource !== 'function') { return; }
    var cols = box.getAttribute('data-columns').split(',');
    var body = box.querySelector('tbody');
    var note = document.getElementById('decision-live');
    var url = box.getAttribute('data-live') + '?since=' + encodeURIComponent(box.getAttribute('data-since'));
    var es = new window.EventSource(url, { withCredentials: true });
    es.addEventListener('decision', function (ev) {
      var rec = JSON.parse(ev.data);
      var empty = body.querySelector('td.empty');
      if (empty) { body.removeChild(empty.parentNode); }
      var tr = document.createElement('tr');
      tr.className = 'live-new';
      tr.setAttribute('data-seq', String(rec.seq));
      cols.forEach(function (k) {
        var td = document.createElement('td');
        td.textContent = decisionCell(k, rec);
        tr.appendChild(td);
      });
      body.insertBefore(tr, body.firstChild);
      box.setAttribute('data-since', String(rec.seq));
    });
    es.addEventListener('open', function () {
      if (note) { note.textContent = 'live: new decisions appear at the top as they are recorded'; }
    });
    es.addEventListener('error', function () {
      if (note) { note.textContent = 'live updates interrupted: reconnecting\u2026'; }
    });
  }

  function start() {
    document.querySelectorAll('[data-chart]').forEach(function (el) { render(el, false); });
    document.querySelectorAll('#decision-log[data-live]').forEach(liveLog);
    window.addEventListener('load', refit);
    window.addEventListener('resize', refit);
    if (EMBEDDED) {
      window.addEventListener('hashchange', refit);
      document.querySelectorAll('table.sortable').forEach(sortable);
      document.querySelectorAll('select[data-filter="strategy"]').forEach(strategyFilter);
    }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
