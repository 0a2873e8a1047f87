// The web page of `cairn serve` (docs/api.md, "Web page"): plain JavaScript, no framework, no
// request to anything but this server. Every value from the API reaches the page as text
// (textContent, createTextNode, setAttribute on fixed attribute names): never as HTML.
'use strict';

(function () {
  const TOKEN_KEY = 'cairn.token';
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const state = { snapshots: [], browse: null };

  const $ = (id) => document.getElementById(id);

  // An element with fixed attributes (names from this file only) and children: nodes or text.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) throw new Error('event handlers are attached with addEventListener');
      e.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(e, children) {
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
    return e;
  }

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  function message(text, isError) {
    const m = $('message');
    m.textContent = text || '';
    m.className = isError ? 'error' : 'muted';
  }

  // ---- formatting -------------------------------------------------------------------------

  function bytes(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '-';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + units[i];
  }

  function when(t) {
    if (typeof t !== 'string') return '-';
    const d = new Date(t);
    if (isNaN(d.getTime())) return t;
    return d.toISOString().slice(0, 19).replace('T', ' ') + 'Z';
  }

  function age(secs) {
    if (typeof secs !== 'number') return '-';
    if (secs < 120) return secs + 's';
    if (secs < 7200) return Math.round(secs / 60) + 'm';
    if (secs < 172800) return Math.round(secs / 3600) + 'h';
    return Math.round(secs / 86400) + 'd';
  }

  function duration(ms) {
    if (typeof ms !== 'number') return '-';
    if (ms < 1000) return ms + ' ms';
    if (ms < 120000) return (ms / 1000).toFixed(1) + ' s';
    return (ms / 60000).toFixed(1) + ' min';
  }

  function groupKey(s) {
    return (s.host || '') + '\u0000' + (s.paths || []).join('\u0000');
  }

  function groupLabel(s) {
    return (s.host || '?') + ': ' + ((s.paths || []).join(', ') || '(no paths)');
  }

  function baseName(p) {
    const parts = String(p).split('/').filter((x) => x !== '');
    return parts.length ? parts[parts.length - 1] : '/';
  }

  function joinPath(dir, name) {
    return (dir.endsWith('/') ? dir : dir + '/') + name;
  }

  // ---- API --------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, text) {
      super(text);
      this.status = status;
    }
  }

  async function api(path) {
    const token = sessionStorage.getItem(TOKEN_KEY) || '';
    const r = await fetch(path, { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' });
    if (!r.ok) {
      let text = r.status + ' ' + r.statusText;
      try {
        const j = await r.json();
        if (j && j.error) text = r.status + ' ' + j.error.code + ': ' + j.error.message;
      } catch (_) {
        // not a JSON error body
      }
      throw new ApiError(r.status, text);
    }
    return r;
  }

  async function json(path) {
    return (await api(path)).json();
  }

  function unauthorized(err) {
    if (err instanceof ApiError && err.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      signedOut('The token was not accepted (' + err.message + ').');
      return true;
    }
    return false;
  }

  // ---- sign in ----------------------------------------------------------------------------

  function signedOut(why) {
    show('app', false);
    show('sign-out', false);
    show('refresh', false);
    show('login', true);
    $('repo-id').textContent = '';
    $('login-error').textContent = why || '';
    document.body.dataset.state = 'login';
    $('token-input').focus();
  }

  function signIn(ev) {
    ev.preventDefault();
    const token = $('token-input').value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token-input').value = '';
    load();
  }

  // ---- loading ----------------------------------------------------------------------------

  async function load() {
    show('login', false);
    show('app', true);
    show('sign-out', true);
    show('refresh', true);
    document.body.dataset.state = 'loading';
    message('Loading…');
    const [snaps, status, ledger, repo] = await Promise.allSettled([
      json('/api/v1/snapshots'),
      json('/api/v1/status'),
      json('/api/v1/ledger'),
      json('/api/v1/repository'),
    ]);
    for (const r of [snaps, status, ledger, repo]) {
      if (r.status === 'rejected' && unauthorized(r.reason)) return;
    }
    if (repo.status === 'fulfilled' && repo.value && typeof repo.value.id === 'string') {
      $('repo-id').textContent = 'repository ' + repo.value.id.slice(0, 16);
    }
    if (snaps.status === 'fulfilled' && Array.isArray(snaps.value)) {
      state.snapshots = snaps.value.slice().sort((a, b) => String(a.time).localeCompare(String(b.time)));
      renderSnapshots();
      renderTimeline();
      renderSize(repo.status === 'fulfilled' ? repo.value : null);
    } else {
      const why = snaps.status === 'rejected' ? snaps.reason.message : 'not a list';
      for (const id of ['snapshots', 'timeline', 'size']) failed(id, 'snapshots', why);
    }
    if (status.status === 'fulfilled') renderStatus(status.value);
    else failed('status', 'status', status.reason.message);
    if (ledger.status === 'fulfilled') renderEvidence(ledger.value);
    else failed('evidence', 'ledger', ledger.reason.message);
    message(state.snapshots.length + ' snapshot(s), loaded ' + when(new Date().toISOString()));
    document.body.dataset.state = 'ready';
  }

  function failed(id, what, why) {
    clear($(id)).appendChild(el('p', { class: 'error' }, 'Could not load the ' + what + ': ' + why));
  }

  // ---- RPO status -------------------------------------------------------------------------

  function renderStatus(st) {
    const box = clear($('status'));
    if (!st || !Array.isArray(st.groups)) {
      box.appendChild(el('p', { class: 'error' }, 'Status: ' + ((st && st.error) || 'no groups')));
      return;
    }
    box.appendChild(
      el('p', {}, el('span', { class: 'badge ' + st.status }, st.status), ' ', st.groups.length + ' group(s)')
    );
    const rows = st.groups.map((g) => {
      const name = g.name || [g.host, (g.paths || []).join(', '), (g.tags || []).join(',')].filter((x) => x).join(': ');
      const n = g.newest;
      return el(
        'tr',
        { class: 'status-group' },
        el('td', {}, el('span', { class: 'badge ' + g.status }, g.status)),
        el('td', { class: 'name' }, name || '(all)'),
        el('td', { class: 'id' }, n ? n.short_id : '-'),
        el('td', {}, n ? when(n.time) : '-'),
        el('td', { class: 'num' }, n ? age(n.age_secs) : '-'),
        el('td', { class: 'num' }, n ? bytes(n.bytes_processed) : '-'),
        el('td', {}, g.last_run || '-'),
        el('td', {}, (g.reasons || []).join('; '))
      );
    });
    box.appendChild(
      el(
        'table',
        {},
        el('thead', {}, el('tr', {}, ['State', 'Group or job', 'Newest', 'Time', 'Age', 'Size', 'Last run', 'Reasons'].map((h) => el('th', {}, h)))),
        el('tbody', {}, rows)
      )
    );
  }

  // ---- last check and drill ---------------------------------------------------------------

  function lastOf(entries, kind) {
    let best = null;
    for (const e of entries) {
      if (e && e.kind === kind && (!best || String(e.time) > String(best.time))) best = e;
    }
    return best;
  }

  function card(title, badge, badgeClass, rows) {
    const dl = el('dl', {});
    for (const [k, v] of rows) dl.append(el('dt', {}, k), el('dd', {}, v));
    return el('div', { class: 'card' }, el('h3', {}, title, ' ', el('span', { class: 'badge ' + badgeClass }, badge)), dl);
  }

  function renderEvidence(entries) {
    const box = clear($('evidence'));
    if (!Array.isArray(entries)) entries = [];
    const cards = el('div', { class: 'cards' });
    const check = lastOf(entries, 'check');
    if (!check) {
      cards.appendChild(card('Check', 'none', 'none', [['', 'no check recorded in the ledger']]));
    } else {
      const c = (check.event && check.event.check) || null;
      const ok = c ? c.errors === 0 : null;
      cards.appendChild(
        card('Check', ok === null ? 'recorded' : ok ? 'passed' : 'failed', ok === null ? 'none' : ok ? 'passed' : 'failed', [
          ['time', when(check.time)],
          ['errors', c ? String(c.errors) : '-'],
          ['warnings', c ? String(c.warnings) : '-'],
          ['host', check.host || '-'],
        ])
      );
    }
    const drill = lastOf(entries, 'drill');
    if (!drill) {
      cards.appendChild(card('Drill', 'none', 'none', [['', 'no drill recorded in the ledger']]));
    } else {
      const d = (drill.event && drill.event.drill) || null;
      const ok = d ? d.passed === true : null;
      cards.appendChild(
        card('Drill', ok === null ? 'recorded' : ok ? 'passed' : 'failed', ok === null ? 'none' : ok ? 'passed' : 'failed', [
          ['time', when(drill.time)],
          ['snapshot', d && d.snapshot ? String(d.snapshot).slice(0, 8) : '-'],
          ['duration', d ? duration(d.duration_ms) : '-'],
          ['RTO', d && typeof d.rto_ms === 'number' ? duration(d.rto_ms) : 'none'],
          ['job', (d && d.job) || '(by hand)'],
        ])
      );
    }
    box.appendChild(cards);
  }

  // ---- snapshots: table per group ---------------------------------------------------------

  function groups() {
    const m = new Map();
    for (const s of state.snapshots) {
      const k = groupKey(s);
      if (!m.has(k)) m.set(k, []);
      m.get(k).push(s);
    }
    return [...m.values()];
  }

  function renderSnapshots() {
    const box = clear($('snapshots'));
    if (!state.snapshots.length) {
      box.appendChild(el('p', { class: 'muted' }, 'No snapshots.'));
      return;
    }
    for (const members of groups()) {
      box.appendChild(el('h3', {}, groupLabel(members[0])));
      const rows = members
        .slice()
        .reverse()
        .map((s) => {
          const sum = s.summary || {};
          const files = (sum.files_new || 0) + (sum.files_changed || 0) + (sum.files_unchanged || 0);
          const browse = el('button', { type: 'button', class: 'browse', 'data-id': s.id }, 'Browse');
          browse.addEventListener('click', () => browseSnapshot(s, '/'));
          return el(
            'tr',
            { class: 'snapshot', 'data-id': s.id },
            el('td', { class: 'id' }, s.short_id || String(s.id).slice(0, 8)),
            el('td', {}, when(s.time)),
            el('td', {}, (s.tags || []).map((t) => el('span', { class: 'tag' }, t))),
            el('td', { class: 'num' }, String(files)),
            el('td', { class: 'num' }, bytes(sum.bytes_processed)),
            el('td', { class: 'num' }, bytes(sum.bytes_added_stored)),
            el('td', {}, s.attribution || '-', (s.flags || []).map((f) => el('span', { class: 'flag' }, f))),
            el('td', {}, browse)
          );
        });
      box.appendChild(
        el(
          'table',
          {},
          el('thead', {}, el('tr', {}, ['Id', 'Time', 'Tags', 'Files', 'Size', 'Stored new', 'Writer', ''].map((h) => el('th', {}, h)))),
          el('tbody', {}, rows)
        )
      );
    }
  }

  // ---- timeline (SVG) ---------------------------------------------------------------------

  function timeRange(list) {
    const ts = list.map((s) => Date.parse(s.time)).filter((t) => !isNaN(t));
    let lo = Math.min(...ts);
    let hi = Math.max(...ts);
    if (!isFinite(lo)) return null;
    if (hi - lo < 60000) {
      lo -= 30000;
      hi += 30000;
    }
    const pad = (hi - lo) * 0.03;
    return [lo - pad, hi + pad];
  }

  function renderTimeline() {
    const box = clear($('timeline'));
    const gs = groups();
    const range = timeRange(state.snapshots);
    if (!gs.length || !range) {
      box.appendChild(el('p', { class: 'muted' }, 'No snapshots.'));
      return;
    }
    const W = 1000;
    const left = 230;
    const right = 20;
    const rowH = 30;
    const H = gs.length * rowH + 34;
    const x = (t) => left + ((t - range[0]) / (range[1] - range[0])) * (W - left - right);
    const chart = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'snapshots per group over time', id: 'timeline-svg' });
    gs.forEach((members, i) => {
      const y = 16 + i * rowH;
      const label = groupLabel(members[0]) + ' (' + members.length + ')';
      chart.appendChild(svg('text', { x: 4, y: y + 4, class: 'row-label' }, label.length > 36 ? label.slice(0, 35) + '…' : label));
      chart.appendChild(svg('line', { x1: left, x2: W - right, y1: y, y2: y, class: 'lane' }));
      for (const s of members) {
        const t = Date.parse(s.time);
        if (isNaN(t)) continue;
        const flagged = (s.flags || []).length > 0;
        const dot = svg(
          'circle',
          { cx: x(t).toFixed(1), cy: y, r: 6, class: 'snap' + (flagged ? ' flagged' : ''), 'data-id': s.id, tabindex: 0 },
          svg('title', {}, (s.short_id || '') + ' ' + when(s.time) + (flagged ? ' [' + s.flags.join(', ') + ']' : ''))
        );
        dot.addEventListener('click', () => browseSnapshot(s, '/'));
        dot.addEventListener('keydown', (ev) => {
          if (ev.key === 'Enter') browseSnapshot(s, '/');
        });
        chart.appendChild(dot);
      }
    });
    const axisY = H - 14;
    chart.appendChild(svg('line', { x1: left, x2: W - right, y1: axisY - 10, y2: axisY - 10, class: 'axis' }));
    chart.appendChild(svg('text', { x: left, y: axisY + 4 }, when(new Date(range[0]).toISOString())));
    chart.appendChild(svg('text', { x: W - right, y: axisY + 4, 'text-anchor': 'end' }, when(new Date(range[1]).toISOString())));
    box.appendChild(chart);
  }

  // ---- repository size over time (SVG) ----------------------------------------------------

  function renderSize(repo) {
    const box = clear($('size'));
    const pts = [];
    let total = 0;
    for (const s of state.snapshots) {
      const t = Date.parse(s.time);
      const add = s.summary && typeof s.summary.bytes_added_stored === 'number' ? s.summary.bytes_added_stored : 0;
      if (isNaN(t)) continue;
      total += add;
      pts.push([t, total]);
    }
    const facts = [];
    if (repo && typeof repo === 'object') {
      for (const k of ['snapshots', 'packs', 'pack_bytes', 'stored_bytes', 'blobs']) {
        if (typeof repo[k] === 'number') facts.push(k.replace('_', ' ') + ': ' + (k.endsWith('bytes') ? bytes(repo[k]) : repo[k]));
      }
    }
    box.appendChild(
      el(
        'p',
        { class: 'muted' },
        'Stored bytes the backups added, cumulative, from the snapshots’ summaries (prune not subtracted): ' + bytes(total) + '.',
        facts.length ? ' Now: ' + facts.join(', ') + '.' : ''
      )
    );
    if (!pts.length) return;
    const range = timeRange(state.snapshots);
    const W = 1000;
    const H = 180;
    const left = 80;
    const right = 20;
    const top = 10;
    const bottom = 30;
    const max = Math.max(total, 1);
    const x = (t) => left + ((t - range[0]) / (range[1] - range[0])) * (W - left - right);
    const y = (v) => top + (1 - v / max) * (H - top - bottom);
    const chart = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'repository size over time', id: 'size-svg' });
    let d = 'M' + x(range[0]).toFixed(1) + ' ' + y(0).toFixed(1);
    for (const [t, v] of pts) d += ' H' + x(t).toFixed(1) + ' V' + y(v).toFixed(1);
    d += ' H' + x(range[1]).toFixed(1);
    chart.appendChild(svg('path', { d: d + ' V' + y(0).toFixed(1) + ' Z', class: 'size-area' }));
    chart.appendChild(svg('path', { d: d, class: 'size-line' }));
    for (const [t, v] of pts) chart.appendChild(svg('circle', { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 3, class: 'size-point' }));
    chart.appendChild(svg('line', { x1: left, x2: left, y1: top, y2: H - bottom, class: 'axis' }));
    chart.appendChild(svg('line', { x1: left, x2: W - right, y1: H - bottom, y2: H - bottom, class: 'axis' }));
    chart.appendChild(svg('text', { x: left - 6, y: top + 8, 'text-anchor': 'end' }, bytes(max)));
    chart.appendChild(svg('text', { x: left - 6, y: H - bottom, 'text-anchor': 'end' }, '0'));
    chart.appendChild(svg('text', { x: left, y: H - 8 }, when(new Date(range[0]).toISOString())));
    chart.appendChild(svg('text', { x: W - right, y: H - 8, 'text-anchor': 'end' }, when(new Date(range[1]).toISOString())));
    box.appendChild(chart);
  }

  // ---- browse and download ----------------------------------------------------------------

  function snapshotUrl(s, what, params) {
    const q = Object.entries(params)
      .map(([k, v]) => encodeURIComponent(k) + '=' + encodeURIComponent(v))
      .join('&');
    return '/api/v1/snapshots/' + encodeURIComponent(s.id) + '/' + what + '?' + q;
  }

  function markSelected(s) {
    for (const e of document.querySelectorAll('tr.snapshot.selected, circle.snap.selected')) e.classList.remove('selected');
    for (const e of document.querySelectorAll('tr.snapshot, circle.snap')) {
      if (e.getAttribute('data-id') === s.id) e.classList.add('selected');
    }
  }

  async function browseSnapshot(s, path) {
    state.browse = { snapshot: s, path: path };
    markSelected(s);
    show('browser-section', true);
    $('browse-title').textContent = (s.short_id || String(s.id).slice(0, 8)) + ' (' + when(s.time) + ', ' + (s.host || '?') + ')';
    renderCrumbs(s, path);
    const listing = clear($('listing'));
    listing.dataset.path = path;
    listing.dataset.state = 'loading';
    listing.appendChild(el('p', { class: 'muted' }, 'Loading ' + path + '…'));
    let entries;
    try {
      entries = await json(snapshotUrl(s, 'ls', { path: path }));
    } catch (err) {
      if (unauthorized(err)) return;
      clear(listing).appendChild(el('p', { class: 'error' }, 'Could not list ' + path + ': ' + err.message));
      listing.dataset.state = 'error';
      return;
    }
    if (!state.browse || state.browse.snapshot !== s || state.browse.path !== path) return;
    renderListing(s, path, Array.isArray(entries) ? entries : []);
    $('browser-section').scrollIntoView({ block: 'start' });
  }

  function renderCrumbs(s, path) {
    const nav = clear($('crumbs'));
    const parts = path.split('/').filter((x) => x !== '');
    const root = el('button', { type: 'button', class: 'link crumb', 'data-path': '/' }, '/');
    root.addEventListener('click', () => browseSnapshot(s, '/'));
    nav.appendChild(root);
    let acc = '';
    parts.forEach((p, i) => {
      acc += '/' + p;
      const target = acc;
      if (i > 0) nav.appendChild(el('span', { class: 'sep' }, '/'));
      const b = el('button', { type: 'button', class: 'link crumb', 'data-path': target }, p);
      b.addEventListener('click', () => browseSnapshot(s, target));
      nav.appendChild(b);
    });
  }

  function renderListing(s, path, entries) {
    const listing = clear($('listing'));
    const rows = [];
    if (path !== '/') {
      const parent = '/' + path.split('/').filter((x) => x !== '').slice(0, -1).join('/');
      const up = el('button', { type: 'button', class: 'link up' }, '..');
      up.addEventListener('click', () => browseSnapshot(s, parent));
      rows.push(el('tr', {}, el('td', { class: 'name' }, up), el('td', {}, 'dir'), el('td', {}), el('td', {}), el('td', {})));
    }
    const items = entries
      .map((e) => ({ e: e, name: typeof e.name === 'string' ? e.name : baseName(e.path) }))
      .map((x) => ({ e: x.e, name: x.name, path: typeof x.e.path === 'string' ? x.e.path : joinPath(path, x.name) }))
      .filter((x) => x.path !== path)
      .sort((a, b) => (a.e.type === 'dir') !== (b.e.type === 'dir') ? (a.e.type === 'dir' ? -1 : 1) : a.name.localeCompare(b.name));
    for (const it of items) {
      const type = String(it.e.type || '?');
      let nameCell;
      const actions = el('td', {});
      if (type === 'dir') {
        nameCell = el('button', { type: 'button', class: 'link open-dir', 'data-path': it.path }, it.name + '/');
        nameCell.addEventListener('click', () => browseSnapshot(s, it.path));
        const tar = el('button', { type: 'button', class: 'download-tar', 'data-path': it.path }, 'tar');
        tar.addEventListener('click', () => download(s, it.path, it.name + '.tar', 'tar'));
        const zip = el('button', { type: 'button', class: 'download-zip', 'data-path': it.path }, 'zip');
        zip.addEventListener('click', () => download(s, it.path, it.name + '.zip', 'zip'));
        actions.append(tar, ' ', zip);
      } else {
        nameCell = el('span', { class: 'file-name' }, it.name);
        if (type === 'file') {
          const dl = el('button', { type: 'button', class: 'download', 'data-path': it.path }, 'Download');
          dl.addEventListener('click', () => download(s, it.path, it.name, 'raw'));
          actions.appendChild(dl);
        }
      }
      rows.push(
        el(
          'tr',
          { class: 'entry', 'data-path': it.path, 'data-type': type },
          el('td', { class: 'name' }, nameCell),
          el('td', {}, type),
          el('td', { class: 'num' }, type === 'file' ? bytes(it.e.size) : ''),
          el('td', {}, when(it.e.mtime)),
          actions
        )
      );
    }
    if (!items.length) rows.push(el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'Empty directory.')));
    listing.appendChild(
      el(
        'table',
        { id: 'listing-table' },
        el('thead', {}, el('tr', {}, ['Name', 'Type', 'Size', 'Modified', ''].map((h) => el('th', {}, h)))),
        el('tbody', {}, rows)
      )
    );
    listing.dataset.state = 'ready';
  }

  // Fetches with the token (a plain link could not send the header), then saves the blob.
  async function download(s, path, name, format) {
    message('Downloading ' + path + '…');
    let blob;
    try {
      const r = await api(snapshotUrl(s, 'download', { path: path, format: format }));
      blob = await r.blob();
    } catch (err) {
      if (unauthorized(err)) return;
      message('Download of ' + path + ' failed: ' + err.message, true);
      return;
    }
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: name, hidden: true });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    message('Downloaded ' + path + ' (' + blob.size + ' bytes).');
    document.body.dataset.downloaded = path;
  }

  // ---- start ------------------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    $('token-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      signedOut('');
    });
    $('refresh').addEventListener('click', () => load());
    if (sessionStorage.getItem(TOKEN_KEY)) load();
    else signedOut('');
  });
})();
