/**
 * The dashboard's script (/ui/app.js): builds one element per VIP, backend and outcome
 * and updates its text in place, so a field being edited keeps its focus and value.
 * Rates, totals and flows come with each stats event; VIPs and daemon status are read
 * again on config, health and link events and on a slow poll. A few minutes of
 * packets/s per VIP and backend are kept here for the sparklines.
 */
import { CHECK_DEFAULTS, formatters } from './format.js';

const SCRIPT = String.raw`
const HISTORY = 300; // samples of one stats tick each: five minutes
const POLL_MS = 5000;
const RECONNECT_MS = 3000;
const $ = (selector) => document.querySelector(selector);
const tokenInput = $('#token');
tokenInput.value = sessionStorage.getItem('xlb-token') || '';
tokenInput.addEventListener('change', () => {
  sessionStorage.setItem('xlb-token', tokenInput.value);
  refresh();
  connect();
});

const vipKey = (v) => v.protocol + '/' + (v.address.includes(':') ? '[' + v.address + ']' : v.address) + ':' + v.port;
const vipPath = (v) => '/v1/vips/' + v.protocol + '/' + encodeURIComponent(v.address) + '/' + v.port;

function el(tag, attributes, ...children) {
  const e = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) e.setAttribute(name, value);
  e.append(...children);
  return e;
}
function setText(e, text) {
  if (e.textContent !== text) e.textContent = text;
}
function setClass(e, name) {
  if (e.getAttribute('class') !== name) e.setAttribute('class', name);
}
/** The elements under root named by data-field, by name. */
function fieldsOf(root) {
  return Object.fromEntries([...root.querySelectorAll('[data-field]')].map((e) => [e.dataset.field, e]));
}

async function api(method, url, body) {
  const headers = tokenInput.value ? { authorization: 'Bearer ' + tokenInput.value } : {};
  if (body) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const json = res.status === 204 ? null : await res.json();
  if (!res.ok) throw new Error(json && json.error ? json.error.message : res.statusText);
  return json;
}

// ---- history ---------------------------------------------------------------
const history = new Map();
function record(key, value) {
  let samples = history.get(key);
  if (!samples) history.set(key, (samples = []));
  samples.push(value);
  if (samples.length > HISTORY) samples.shift();
  return samples;
}
function sparkline() {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 ' + HISTORY + ' 20');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'spark');
  svg.dataset.field = 'history';
  svg.append(document.createElementNS('http://www.w3.org/2000/svg', 'polyline'));
  return svg;
}
function drawSparkline(svg, samples) {
  const max = Math.max(1, ...samples);
  const start = HISTORY - samples.length;
  svg.firstChild.setAttribute('points', samples.map((v, i) => start + i + ',' + (19 - (v / max) * 18).toFixed(1)).join(' '));
  svg.dataset.samples = String(samples.length);
  svg.dataset.last = String(samples[samples.length - 1]);
}

// ---- VIPs and backends -------------------------------------------------------
const TRAFFIC = ['packetsPerSecond', 'bitsPerSecond', 'packets', 'bytes', 'flows'];
const SUMMARY_LABELS = { packetsPerSecond: '', bitsPerSecond: '', packets: 'packets', bytes: 'bytes', flows: 'flows' };
const nodes = new Map(); // VIP key -> { view, section, f, rows: Map(address -> row) }
let lastStats = null;

function trafficCells() {
  return TRAFFIC.map((name) => el('td', { class: 'num', 'data-field': name }));
}

function createVip(key) {
  const section = el('section', { class: 'vip', 'data-vip': key });
  section.append(
    el('h2', {},
      el('span', {}, key),
      el('span', { class: 'muted', 'data-field': 'settings' }),
      el('span', { class: 'panic', 'data-field': 'panic' })),
    el('div', { class: 'summary' },
      ...TRAFFIC.flatMap((name) => [el('span', { class: 'muted' }, SUMMARY_LABELS[name]), el('span', { 'data-field': name })]),
      sparkline(),
      el('span', { class: 'muted' }, 'in ring'), el('span', { 'data-field': 'ringBackends' })),
    el('div', { class: 'muted' }, 'health check: ', el('span', { 'data-field': 'healthCheck' })),
  );
  const head = ['backend', 'health', 'last check', 'took', 'last failure', 'state', 'weight', 'in ring'];
  head.push('pkt/s', 'bit/s', 'packets', 'bytes', 'flows', 'history', '');
  const tbody = el('tbody');
  section.append(el('table', {}, el('thead', {}, el('tr', {}, ...head.map((t) => el('th', {}, t)))), tbody));
  const node = { view: null, section, f: fieldsOf(section), rows: new Map(), tbody };
  nodes.set(key, node);
  return node;
}

function createRow(node, address) {
  const weight = el('input', { class: 'weight', type: 'text', inputmode: 'numeric', 'aria-label': 'weight of ' + address, 'data-field': 'weight' });
  const toggle = el('button', { 'data-field': 'toggle' });
  const tr = el('tr', { 'data-backend': address },
    el('td', {}, address),
    el('td', {},
      el('span', { 'data-field': 'health' }), ' ',
      el('span', { class: 'reason', 'data-field': 'via' }), ' ',
      el('span', { class: 'reason', 'data-field': 'healthReason' })),
    el('td', { 'data-field': 'lastCheck' }),
    el('td', { class: 'num', 'data-field': 'lastCheckMs' }),
    el('td', {}, el('span', { 'data-field': 'lastFailure' }), ' ', el('span', { class: 'reason', 'data-field': 'lastFailureReason' })),
    el('td', { 'data-field': 'state' }),
    el('td', {}, weight),
    el('td', {}, el('span', { 'data-field': 'inRing' }), ' ', el('span', { class: 'reason', 'data-field': 'ringReason' })),
    ...trafficCells(),
    el('td', {}, sparkline()),
    el('td', {}, toggle),
  );
  const row = { address, tr, f: fieldsOf(tr), view: null, editing: false, pending: null };
  weight.addEventListener('input', () => { row.editing = true; });
  weight.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') submitWeight(node, row);
    if (event.key === 'Escape') { row.editing = false; weight.value = String(row.view.weight); }
  });
  weight.addEventListener('change', () => submitWeight(node, row));
  toggle.addEventListener('click', () => changeBackend(node, row, { state: row.view.state === 'drain' ? 'active' : 'drain' }));
  node.rows.set(address, row);
  return row;
}

/** Puts the children in order, moving only those out of place (a moved element loses focus). */
function order(parent, children) {
  const keep = new Set(children);
  for (const child of [...parent.children]) if (!keep.has(child)) child.remove();
  children.forEach((child, i) => {
    if (parent.children[i] !== child) parent.insertBefore(child, parent.children[i] || null);
  });
}

function showVips(vips) {
  const keys = new Set(vips.map(vipKey));
  for (const [key, node] of nodes) if (!keys.has(key)) nodes.delete(key);
  // The history of a VIP or backend that is gone goes with it.
  const shown = new Set(vips.flatMap((v) => [vipKey(v), ...v.backends.map((b) => vipKey(v) + ' ' + b.address)]));
  for (const key of history.keys()) if (!shown.has(key)) history.delete(key);
  order($('#vips'), vips.map(showVip));
  if (lastStats) showTraffic(lastStats, false);
}

function showVip(v) {
  const key = vipKey(v);
  const node = nodes.get(key) || createVip(key);
  node.view = v;
  const f = node.f;
  setText(f.settings, formatVipSettings(v));
  setText(f.panic, v.panic ? 'PANIC' : '');
  setText(f.ringBackends, v.ringBackends + ' of ' + v.backends.length);
  setText(f.healthCheck, formatCheck(v.healthCheck, v.port, CHECK_DEFAULTS));
  const addresses = new Set(v.backends.map((b) => b.address));
  for (const address of node.rows.keys()) if (!addresses.has(address)) node.rows.delete(address);
  order(node.tbody, v.backends.map((b) => showBackend(node, b)));
  return node.section;
}

function showBackend(node, b) {
  const row = node.rows.get(b.address) || createRow(node, b.address);
  row.view = b;
  const f = row.f;
  setText(f.health, b.health);
  setClass(f.health, b.health);
  setText(f.via, formatVia(b.via));
  setText(f.healthReason, b.healthReason || '');
  setText(f.lastCheck, formatClock(b.lastCheckAt));
  f.lastCheck.title = b.lastCheckAt || '';
  setText(f.lastCheckMs, formatLatency(b.lastCheckMs));
  setText(f.lastFailure, b.lastFailureAt ? formatClock(b.lastFailureAt) : '');
  f.lastFailure.title = b.lastFailureAt || '';
  setText(f.lastFailureReason, b.lastFailureReason || '');
  setText(f.state, b.state);
  setClass(f.state, b.state);
  setText(f.inRing, b.inRing ? 'yes' : 'no');
  setText(f.ringReason, b.inRing ? b.slots + ' slots' : b.reason || '');
  setText(f.toggle, b.state === 'drain' ? 'activate' : 'drain');
  // The operator's edit stands until it is sent or dropped (Escape).
  if (!row.editing && document.activeElement !== f.weight && f.weight.value !== String(b.weight)) f.weight.value = String(b.weight);
  return row.tr;
}

function showCounts(f, t, historyKey, tick) {
  setText(f.packetsPerSecond, formatRate(t.packetsPerSecond, 'pkt/s'));
  setText(f.bitsPerSecond, formatRate(t.bytesPerSecond * 8, 'bit/s'));
  setText(f.packets, formatCount(t.packets));
  setText(f.bytes, formatBytes(t.bytes));
  setText(f.flows, formatCount(t.flows));
  if (tick) drawSparkline(f.history, record(historyKey, t.packetsPerSecond));
}

/** Counts and rates from a stats event (tick: a new sample for the history) or from /v1/stats. */
function showTraffic(stats, tick) {
  lastStats = stats;
  let unknown = false;
  for (const s of stats.vips) {
    const key = vipKey(s);
    const node = nodes.get(key);
    if (!node) { unknown = true; continue; }
    showCounts(node.f, s, key, tick);
    for (const b of s.backends) {
      const row = node.rows.get(b.address);
      if (row) showCounts(row.f, b, key + ' ' + b.address, tick);
      else unknown = true;
    }
  }
  if (unknown) refreshSoon();
  const outcomes = $('#outcomes tbody');
  order(outcomes, Object.entries(stats.outcomes).map(([name, t]) => {
    const tr = outcomes.querySelector('tr[data-outcome="' + name + '"]') ||
      el('tr', { 'data-outcome': name },
        el('td', {}, name), el('td', { class: 'num', 'data-field': 'packets' }), el('td', { class: 'num', 'data-field': 'bytes' }));
    const f = fieldsOf(tr);
    setClass(tr, name.startsWith('drop') && t.packets > 0 ? 'drop' : '');
    setText(f.packets, formatCount(t.packets));
    setText(f.bytes, formatBytes(t.bytes));
    return tr;
  }));
  const table = fieldsOf($('#flow-table'));
  setText(table.flows, formatCount(stats.flowTable.flows));
  setText(table.slots, formatCount(stats.flowTable.slots));
  setText(table.fill, formatShare(stats.flowTable.flows, stats.flowTable.slots));
  const byClass = (counts) => [counts.new, counts.established, counts.closing].map(formatCount).join(' · ');
  setText(table.newFlows, formatPerCpu(stats.flood.newFlowsPerSecond));
  setText(table.states, byClass(stats.flowTable.states));
  setText(table.evictions, byClass(stats.flowTable.evictions));
  setText(table.unrecorded, formatCount(stats.flowTable.unrecorded));
  setText($('#flood'), formatFlood(stats.flood));
}

// ---- daemon ------------------------------------------------------------------
let status = null;
function showStatus() {
  if (!status) return;
  const f = fieldsOf($('#daemon'));
  setText(f.version, status.version);
  setText(f.interface, status.interface);
  setText(f.xdpMode, status.xdpMode);
  setText(f.attached, status.attached ? 'yes' : 'no — ' + (status.attachReason || ''));
  setText(f.uptime, formatDuration(status.uptimeSeconds + (Date.now() - status.readAt) / 1000));
}

// ---- reading and writing -------------------------------------------------------
let reading = null;
let readAgain = false;
let writes = 0; // changes sent and answered: a read that overlaps one may be older than its answer
/** Reads VIPs and status; calls during a read make one more read after it. */
function refresh() {
  if (reading) { readAgain = true; return reading; }
  reading = (async () => {
    do {
      readAgain = false;
      const writesBefore = writes;
      try {
        const [list, next] = await Promise.all([api('GET', '/v1/vips'), api('GET', '/v1/status')]);
        status = { ...next, readAt: Date.now() };
        showStatus();
        if (writes !== writesBefore) { readAgain = true; continue; }
        showVips(list.vips);
        if (!socket || socket.readyState !== WebSocket.OPEN) showTraffic(await api('GET', '/v1/stats'), false);
        setText($('#error'), '');
      } catch (e) {
        setText($('#error'), e.message);
      }
    } while (readAgain);
  })().finally(() => { reading = null; });
  return reading;
}
let soon = null;
function refreshSoon() {
  if (!soon) soon = setTimeout(() => { soon = null; refresh(); }, 100);
}

/** Changes what changes names of a backend; PUT replaces its settings, so it carries the current value of the other. */
async function changeBackend(node, row, changes) {
  writes++;
  try {
    const url = vipPath(node.view) + '/backends/' + encodeURIComponent(row.address);
    const vip = await api('PATCH', url, changes);
    setText($('#action-error'), '');
    showVip(vip);
    return true;
  } catch (e) {
    setText($('#action-error'), vipKey(node.view) + ' backend ' + row.address + ': ' + e.message);
    return false;
  } finally {
    writes++;
  }
}

async function submitWeight(node, row) {
  const text = row.f.weight.value.trim();
  const weight = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(weight <= 65535)) {
    const problem = 'weight must be a whole number from 0 to 65535, not "' + text + '"';
    setText($('#action-error'), vipKey(node.view) + ' backend ' + row.address + ': ' + problem);
    return;
  }
  // Enter and the change that follows it send one request.
  if (weight === (row.pending === null ? row.view.weight : row.pending)) { row.editing = false; return; }
  row.pending = weight;
  if (await changeBackend(node, row, { weight })) row.editing = false;
  row.pending = null;
}

// ---- events ------------------------------------------------------------------
/** Events after which the VIPs or the daemon's status read differently. */
const VIEW_EVENTS = new Set(['config', 'health', 'link']);
let socket = null;
let ticks = 0;
function connect() {
  if (socket) socket.close();
  const url = new URL('/v1/events', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (tokenInput.value) url.searchParams.set('access_token', tokenInput.value);
  const ws = (socket = new WebSocket(url));
  let opened = false;
  ws.onopen = () => {
    opened = true;
    setText($('#status'), 'live');
  };
  // A stream that was live comes back by itself (a daemon restart); a refused one waits for a new token.
  ws.onclose = () => {
    if (socket !== ws) return;
    setText($('#status'), 'disconnected');
    if (opened) setTimeout(() => { if (socket === ws) connect(); }, RECONNECT_MS);
  };
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === 'stats') {
      showTraffic(event, true);
      showStatus();
      document.body.dataset.ticks = String(++ticks);
    } else if (VIEW_EVENTS.has(event.type)) refreshSoon();
  };
}
refresh();
connect();
setInterval(refresh, POLL_MS);
`;

/** The script with the formatting functions and check defaults it uses. */
export const APP = [...formatters.map(String), `const CHECK_DEFAULTS = ${JSON.stringify(CHECK_DEFAULTS)};`, SCRIPT].join('\n');
