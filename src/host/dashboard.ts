/**
 * The status page behind `GET /api/dashboard` (and `graph-connector run --dashboard`): one self-contained HTML
 * document — inline style and script, no external resource — that reads `status`, `jobs` and `deadletters` from
 * the same `/api/` folder it was served from, and calls `deadletters/replay`.
 *
 * - The function key: the page reads `code` from its own query string and adds it to every API call, so it works
 *   behind `authLevel: function` (https://learn.microsoft.com/azure/azure-functions/function-keys-how-to).
 * - Escaping: everything it shows comes from the source or from Graph (item ids, error messages, reasons), so
 *   the script only ever creates elements and text nodes (`textContent`, never `innerHTML`), and the
 *   Content-Security-Policy allows only this document's own script and style (by hash): an injected attribute
 *   or element could not run even if it were rendered.
 *
 * The client script is plain ES2017 in a string: it must not use template literals (this file's own quoting).
 */
import { createHash } from 'node:crypto';

const STYLE = String.raw`
:root { color-scheme: light dark; --fg: #1b1b1b; --muted: #5c5c5c; --bg: #fafafa; --card: #fff; --line: #ddd;
  --accent: #0f6cbd; --ok: #107c10; --bad: #c50f1f; --warn: #bc4b09; }
@media (prefers-color-scheme: dark) { :root { --fg: #eee; --muted: #aaa; --bg: #1b1b1b; --card: #262626;
  --line: #3a3a3a; --accent: #4ca0e0; --ok: #54b054; --bad: #f1707b; --warn: #f0a04b; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 12px 20px; border-bottom: 1px solid var(--line); display: flex; gap: 16px; align-items: baseline;
  flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; }
main { padding: 16px 20px; display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px;
  min-width: 0; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 15px; margin: 0 0 8px; } h2.next { margin-top: 12px; }
h3 { font-size: 13px; font-weight: 400; margin: 8px 0 2px; }
.muted { color: var(--muted); }
.ok { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: right; padding: 3px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
td.text { white-space: normal; overflow-wrap: anywhere; }
.bar { height: 8px; background: var(--line); border-radius: 4px; overflow: hidden; margin: 6px 0; }
.bar > div { height: 100%; background: var(--accent); }
button { font: inherit; padding: 2px 10px; border: 1px solid var(--accent); color: var(--accent);
  background: transparent; border-radius: 4px; cursor: pointer; }
button:disabled { opacity: .5; cursor: default; }
details { border-top: 1px solid var(--line); padding: 6px 0; }
summary { cursor: pointer; display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
summary .code { font-weight: 600; }
#error { display: none; background: var(--bad); color: #fff; padding: 8px 20px; }
svg { width: 100%; max-width: 760px; height: auto; display: block; }
svg text { fill: var(--muted); font-size: 11px; }
svg .axis { stroke: var(--line); } svg .line { fill: none; stroke: var(--accent); stroke-width: 2; }
svg .dot { fill: var(--accent); }
`;

const SCRIPT = String.raw`
(function () {
  'use strict';
  var query = new URLSearchParams(location.search);
  var key = query.get('code');
  var every = Math.max(2, Number(query.get('refresh')) || 5) * 1000;
  var live = [];
  var lastCrawl = null;

  function api(path, init) {
    var url = new URL(path, location.href);
    if (key) url.searchParams.set('code', key);
    return fetch(url.toString(), Object.assign({ cache: 'no-store' }, init || {})).then(function (r) {
      return r.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (!r.ok) {
          var problems = body && body.error ? (body.error.problems || [body.error.message]).join('; ') : text;
          throw new Error(path + ': HTTP ' + r.status + (problems ? ' — ' + problems : ''));
        }
        return body;
      });
    });
  }

  // Elements and text nodes only: nothing the API returns is ever parsed as HTML.
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    var a = attrs || {};
    Object.keys(a).forEach(function (k) {
      if (k === 'text') node.textContent = String(a[k]);
      else if (k === 'onclick') node.addEventListener('click', a[k]);
      else node.setAttribute(k, String(a[k]));
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    });
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function fill(id, nodes) {
    var box = document.getElementById(id);
    box.replaceChildren.apply(box, nodes);
  }
  function fmt(n) { return typeof n === 'number' ? n.toLocaleString('en-US') : '—'; }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : '—'; }
  function secs(s) {
    if (typeof s !== 'number' || !isFinite(s)) return '—';
    if (s < 90) return Math.round(s) + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    return (s / 3600).toFixed(1) + ' h';
  }
  function duration(job) {
    var end = job.finishedAt ? Date.parse(job.finishedAt) : Date.now();
    return (end - Date.parse(job.startedAt)) / 1000;
  }
  function pairs(list) {
    return el('dl', {}, list.reduce(function (acc, p) {
      acc.push(el('dt', { text: p[0] }));
      acc.push(el('dd', p[2] ? { 'class': p[2] } : {}, [p[1]]));
      return acc;
    }, []));
  }
  var FINISHED = { completed: 1, failed: 1, cancelled: 1 };

  // enumerated = ingested + unchanged + rejected + dead-lettered + superseded (+ deletes of records' old ids);
  // the sweep's deletes are counted on their own (as graph-connector run's reconciliation table does).
  function reconciles(c) {
    var sweep = Math.max(0, c.enqueued - (c.enumerated - c.unchanged - c.rejected) - c.moved);
    var side = c.ingested + c.unchanged + c.rejected + c.deadLettered + c.superseded + c.deleted - sweep - c.moved;
    return side === c.enumerated;
  }

  function renderProvisioning(s) {
    var p = s.provisioning;
    if (!p) return fill('provisioning', [el('p', { 'class': 'muted', text: 'Not provisioned yet: POST /api/provision starts it.' })]);
    fill('provisioning', [pairs([
      ['connection', s.connectionId],
      ['phase', p.phase, p.phase === 'ready' ? 'ok' : p.phase === 'failed' ? 'bad' : 'warn'],
      ['progress', p.progress],
      ['updated', when(p.updatedAt)],
    ].concat(p.lastError ? [['last error', p.lastError, 'bad']] : []))]);
  }

  function renderRunning(s, job) {
    var held = s.runningCrawl;
    if (!job) {
      return fill('running', [el('p', { 'class': 'muted', text: held && !held.expired
        ? 'The connection is held by ' + held.holder + ' since ' + when(held.since) + '.'
        : 'No crawl is running.' })]);
    }
    var p = job.progress || {};
    var src = p.source;
    var c = job.counts;
    var nodes = [pairs([
      ['crawl', job.crawlId + ' (' + job.mode + ', ' + job.trigger + ')'],
      ['phase', job.status + (p.enumerated ? ' — source read to the end' : ' — reading the source')],
      ['slices · pages', fmt(p.slices) + ' · ' + fmt(p.pages)],
      ['position', src ? fmt(src.done) + (src.total ? ' of ' + fmt(src.total) : '') + ' ' + src.unit +
        (typeof src.percent === 'number' ? ' (' + src.percent + ' %)' : '') : '—'],
      ['records/s', fmt(p.recordsPerSecond)],
      ['ETA', p.etaSeconds !== undefined ? secs(p.etaSeconds) : p.enumerated ? 'read; settling' : 'unknown'],
      ['read · queued · pending', fmt(c.enumerated) + ' · ' + fmt(c.enqueued) + ' · ' + fmt(c.pending)],
      ['running for', secs(duration(job))],
    ])];
    if (src && typeof src.percent === 'number') {
      var bar = el('div', { 'class': 'bar', role: 'progressbar', 'aria-valuenow': src.percent });
      var done = el('div', {});
      done.style.width = Math.max(0, Math.min(100, src.percent)) + '%';
      bar.appendChild(done);
      nodes.unshift(bar);
    }
    fill('running', nodes);
  }

  var COLUMNS = [
    ['enumerated', 'read'], ['ingested', 'ingested'], ['unchanged', 'unchanged'], ['rejected', 'rejected'],
    ['deadLettered', 'dead-lettered'], ['superseded', 'superseded'], ['deleted', 'deleted'], ['pending', 'pending'],
  ];
  function renderJobs(jobs) {
    if (!jobs.length) return fill('jobs', [el('p', { 'class': 'muted', text: 'No crawl yet.' })]);
    var head = el('tr', {}, [el('th', { text: 'crawl' }), el('th', { 'class': 'text', text: 'status' }),
      el('th', { 'class': 'text', text: 'started' }), el('th', { text: 'took' })]
      .concat(COLUMNS.map(function (c) { return el('th', { text: c[1] }); }))
      .concat([el('th', { text: 'check' })]));
    var rows = jobs.map(function (j) {
      var ok = reconciles(j.counts);
      var finished = !!FINISHED[j.status];
      return el('tr', { 'data-crawl': j.crawlId }, [
        el('td', { title: j.crawlId, text: j.crawlId.slice(0, 13) + ' ' + j.mode }),
        el('td', { 'class': 'text ' + (j.status === 'completed' ? 'ok' : j.status === 'failed' ? 'bad' : ''),
          title: j.error || '', text: j.status }),
        el('td', { 'class': 'text', text: when(j.startedAt) }),
        el('td', { text: secs(duration(j)) }),
      ].concat(COLUMNS.map(function (c) { return el('td', { 'data-count': c[0], text: fmt(j.counts[c[0]]) }); }))
        .concat([el('td', { 'class': finished ? (ok ? 'ok' : 'bad') : 'muted',
          title: 'read = ingested + unchanged + rejected + dead-lettered + superseded',
          text: finished ? (ok ? '✓' : '✗') : '…' })]));
    });
    fill('jobs', [el('table', {}, [el('thead', {}, [head]), el('tbody', {}, rows)])]);
  }

  // A small SVG chart: bars (one per crawl, evenly spaced) or a line over time (the running crawl).
  function chart(points, label, bars) {
    var w = 640, h = 170, l = 44, b = 22, t = 16, r = 10;
    var box = svg('svg', { viewBox: '0 0 ' + w + ' ' + h, role: 'img', 'aria-label': label });
    if (points.length === 0) {
      box.appendChild(svg('text', { x: l, y: h / 2 }, 'no finished crawl yet'));
      return box;
    }
    var n = points.length, x0 = points[0].x, x1 = points[n - 1].x;
    var ymax = Math.max.apply(null, points.map(function (p) { return p.y; }).concat([1])) * 1.1;
    var slot = (w - l - r) / n;
    function X(p, i) {
      if (bars) return l + slot * (i + 0.5);
      return x1 === x0 ? (l + w - r) / 2 : l + ((p.x - x0) / (x1 - x0)) * (w - l - r);
    }
    function Y(y) { return h - b - (y / ymax) * (h - b - t); }
    box.appendChild(svg('line', { 'class': 'axis', x1: l, y1: h - b, x2: w - r, y2: h - b }));
    box.appendChild(svg('line', { 'class': 'axis', x1: l, y1: t, x2: l, y2: h - b }));
    box.appendChild(svg('text', { x: l - 4, y: t + 4, 'text-anchor': 'end' }, ymax < 10 ? ymax.toFixed(1) : fmt(Math.round(ymax))));
    box.appendChild(svg('text', { x: l - 4, y: h - b, 'text-anchor': 'end' }, '0'));
    box.appendChild(svg('text', { x: bars ? X(points[0], 0) : l, y: h - 4, 'text-anchor': bars ? 'middle' : 'start' },
      new Date(x0).toLocaleTimeString()));
    if (n > 1) box.appendChild(svg('text', { x: bars ? X(points[n - 1], n - 1) : w - r, y: h - 4,
      'text-anchor': bars ? 'middle' : 'end' }, new Date(x1).toLocaleTimeString()));
    if (!bars) box.appendChild(svg('polyline', { 'class': 'line', points: points.map(function (p, i) {
      return X(p, i).toFixed(1) + ',' + Y(p.y).toFixed(1);
    }).join(' ') }));
    points.forEach(function (p, i) {
      var shape = bars
        ? svg('rect', { 'class': 'dot', x: (X(p, i) - Math.min(36, slot * 0.7) / 2).toFixed(1), y: Y(p.y).toFixed(1),
          width: Math.min(36, slot * 0.7).toFixed(1), height: (h - b - Y(p.y)).toFixed(1) })
        : svg('circle', { 'class': 'dot', cx: X(p, i).toFixed(1), cy: Y(p.y).toFixed(1), r: 3 });
      shape.appendChild(svg('title', {}, p.label));
      box.appendChild(shape);
      if (bars && n <= 20) box.appendChild(svg('text', { x: X(p, i).toFixed(1), y: (Y(p.y) - 4).toFixed(1),
        'text-anchor': 'middle' }, p.y < 10 ? p.y.toFixed(1) : fmt(Math.round(p.y))));
    });
    return box;
  }

  function renderThroughput(jobs, running) {
    // Finished crawls: records read per second of the whole crawl (start to settled), oldest first.
    var history = jobs.filter(function (j) { return FINISHED[j.status] && j.finishedAt; }).reverse().map(function (j) {
      var rate = j.counts.enumerated / Math.max(1, duration(j));
      return { x: Date.parse(j.startedAt), y: rate, label: j.crawlId + ': ' + rate.toFixed(1) + ' records/s' };
    });
    // The running crawl: operations settled per second between two refreshes of this page.
    if (running) {
      if (lastCrawl !== running.crawlId) { live = []; lastCrawl = running.crawlId; }
      var c = running.counts;
      live.push({ t: Date.now(), settled: c.ingested + c.deleted + c.deadLettered + c.superseded + c.unchanged });
      if (live.length > 120) live.shift();
    }
    var rates = [];
    for (var i = 1; i < live.length; i++) {
      var dt = (live[i].t - live[i - 1].t) / 1000;
      var y = dt > 0 ? Math.max(0, live[i].settled - live[i - 1].settled) / dt : 0;
      rates.push({ x: live[i].t, y: y, label: y.toFixed(1) + ' settled/s' });
    }
    var nodes = [el('h3', { 'class': 'muted', text: 'records read per second, by crawl' }), chart(history, 'records per second by crawl', true)];
    if (rates.length) {
      nodes.push(el('h3', { 'class': 'muted', text: 'this crawl: records settled per second (since this page opened)' }));
      nodes.push(chart(rates, 'records settled per second', false));
    }
    fill('throughput', nodes);
  }

  function replay(itemIds, button) {
    button.disabled = true;
    var note = document.getElementById('replay-result');
    note.textContent = 'replaying ' + itemIds.length + '…';
    api('deadletters/replay', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ itemIds: itemIds }),
    }).then(function (r) {
      note.textContent = 'replayed ' + r.replayed + (r.skipped.length ? ', skipped ' + r.skipped.length + ': ' +
        r.skipped.map(function (s) { return s.itemId + ' (' + s.reason + ')'; }).join('; ') : '');
      note.className = r.replayed ? 'ok' : 'warn';
      refresh();
    }, function (e) {
      note.textContent = e.message;
      note.className = 'bad';
      button.disabled = false;
    });
  }

  function renderDeadLetters(list, total) {
    var groups = {};
    list.forEach(function (d) {
      var k = d.op === 'reject' ? 'rejected by the mapping' : (d.code || 'HTTP ' + d.status) + ' (' + d.op + ')';
      (groups[k] = groups[k] || []).push(d);
    });
    var keys = Object.keys(groups).sort(function (a, b) { return groups[b].length - groups[a].length; });
    var nodes = [el('p', { 'class': total.count ? 'warn' : 'muted',
      text: total.count ? fmt(total.count) + (total.capped ? '+' : '') + ' dead letters' : 'No dead letters.' }),
      el('p', { id: 'replay-result', role: 'status' })];
    keys.forEach(function (k) {
      var items = groups[k];
      var replayable = items.filter(function (d) { return d.op !== 'reject'; });
      var ids = replayable.map(function (d) { return d.itemId; });
      var summary = el('summary', {}, [el('span', { 'class': 'code', text: k }), el('span', { text: fmt(items.length) }),
        el('span', { 'class': 'muted', text: items[0].message })]);
      if (ids.length) {
        var all = el('button', { type: 'button', 'data-replay-group': k, text: 'replay ' + ids.length });
        all.addEventListener('click', function (ev) { ev.preventDefault(); replay(ids, all); });
        summary.appendChild(all);
      }
      var rows = items.slice(0, 200).map(function (d) {
        var cell = el('td', {});
        if (d.op !== 'reject') {
          var one = el('button', { type: 'button', 'data-replay-item': d.itemId, text: 'replay' });
          one.addEventListener('click', function () { replay([d.itemId], one); });
          cell.appendChild(one);
        }
        return el('tr', {}, [el('td', { 'class': 'text item-id', text: d.itemId }),
          el('td', { 'class': 'text', text: (d.reasons && d.reasons.length ? d.reasons.join('; ') : d.message) }),
          el('td', { text: d.crawlId.slice(0, 13) }), el('td', { text: fmt(d.attempts) }),
          el('td', { 'class': 'text', text: when(d.at) }), cell]);
      });
      nodes.push(el('details', { 'data-group': k }, [summary, el('table', {}, [el('thead', {}, [el('tr', {}, [
        el('th', { text: 'item' }), el('th', { 'class': 'text', text: 'reason' }), el('th', { text: 'crawl' }),
        el('th', { text: 'attempts' }), el('th', { 'class': 'text', text: 'at' }), el('th', {})])]),
        el('tbody', {}, rows)])]));
    });
    // Keep the groups the reader opened open across refreshes.
    var open = {};
    document.querySelectorAll('#deadletters details[open]').forEach(function (d) { open[d.getAttribute('data-group')] = 1; });
    var before = document.getElementById('replay-result');
    if (before && before.textContent) { nodes[1].textContent = before.textContent; nodes[1].className = before.className; }
    fill('deadletters', nodes);
    document.querySelectorAll('#deadletters details').forEach(function (d) { if (open[d.getAttribute('data-group')]) d.open = true; });
  }

  function renderQueue(s) {
    fill('queue', [pairs([
      ['items queue', s.itemsQueueDepth < 0 ? 'unknown' : fmt(s.itemsQueueDepth) + ' messages'],
      ['items in Graph', s.items ? fmt(s.items.count) + ' (snapshot ' + s.items.snapshotVersion + ', ' + when(s.items.updatedAt) + ')' : '—'],
    ])]);
  }

  var timer = null;
  function refresh() {
    clearTimeout(timer);
    return Promise.all([api('status'), api('jobs?top=20'), api('deadletters?top=1000')]).then(function (r) {
      var s = r[0], jobs = r[1].value, dls = r[2].value;
      var running = jobs.filter(function (j) { return !FINISHED[j.status]; })[0] || null;
      document.getElementById('connection').textContent = s.connectionId;
      renderProvisioning(s);
      renderRunning(s, running);
      renderJobs(jobs);
      renderThroughput(jobs, running);
      renderDeadLetters(dls, s.deadLetters);
      renderQueue(s);
      document.getElementById('error').style.display = 'none';
      document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      document.body.setAttribute('data-loaded', 'true');
    }).catch(function (e) {
      var box = document.getElementById('error');
      box.textContent = e.message + (key ? '' : ' (behind a function key, open this page with ?code=<key>)');
      box.style.display = 'block';
    }).then(function () { timer = setTimeout(refresh, every); });
  }
  refresh();
})();
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>graph-connector status</title>
<style>${STYLE}</style>
</head>
<body>
<div id="error" role="alert"></div>
<header><h1>graph-connector</h1><span id="connection" class="muted"></span><span id="updated" class="muted">loading…</span></header>
<main>
<section id="running-card"><h2>Crawl in progress</h2><div id="running"></div></section>
<section><h2>Provisioning</h2><div id="provisioning"></div><h2 class="next">Queue and items</h2><div id="queue"></div></section>
<section class="wide"><h2>Recent crawls</h2><div id="jobs"></div></section>
<section class="wide"><h2>Throughput</h2><div id="throughput"></div></section>
<section class="wide"><h2>Dead letters by error code</h2><div id="deadletters"></div></section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

/**
 * Only this document's own style and script run; API calls go to this origin; no frame may embed it; the key in
 * its address is never sent as a referrer.
 */
export const DASHBOARD_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': [
    "default-src 'none'",
    `script-src ${sha256(SCRIPT)}`,
    `style-src ${sha256(STYLE)}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};
