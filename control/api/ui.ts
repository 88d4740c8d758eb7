/**
 * GET /ui: a one-page dashboard served by the daemon. VIPs and their backends (health,
 * weight, state, ring membership), live packets per second per VIP and share per
 * backend from /v1/events, and drain/activate and weight controls that call the REST
 * API with the operator's token. Plain HTML and JavaScript: nothing to build.
 */
import type { FastifyPluginAsync } from 'fastify';
import { uiSchema } from './text-schemas.js';

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>xlb</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5rem; color: #1b1f24; background: #f6f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  header { display: flex; gap: 1rem; align-items: center; margin-bottom: 1rem; }
  #status { color: #57606a; }
  section.vip { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 0.8rem 1rem; margin-bottom: 1rem; }
  section.vip h2 { font-size: 1rem; margin: 0 0 0.5rem; display: flex; gap: 1rem; }
  .pps { font-variant-numeric: tabular-nums; color: #0969da; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 0.3rem 0.6rem; border-top: 1px solid #eaeef2; }
  .up { color: #1a7f37; } .down { color: #cf222e; } .unknown { color: #9a6700; }
  .bar { display: inline-block; height: 0.7rem; background: #54aeff; vertical-align: middle; }
  input.weight { width: 4rem; }
  #error { color: #cf222e; }
</style>
</head>
<body>
<header>
  <h1>xlb</h1>
  <span id="status">connecting…</span>
  <label>token <input id="token" type="password" size="24" autocomplete="off"></label>
  <span id="error"></span>
</header>
<main id="vips"></main>
<script>
const tokenInput = document.getElementById('token');
tokenInput.value = sessionStorage.getItem('xlb-token') || '';
tokenInput.addEventListener('change', () => { sessionStorage.setItem('xlb-token', tokenInput.value); refresh(); connect(); });
const headers = () => tokenInput.value ? { authorization: 'Bearer ' + tokenInput.value } : {};
const path = (v, b) =>
  '/v1/vips/' + v.protocol + '/' + encodeURIComponent(v.address) + '/' + v.port + (b ? '/backends/' + encodeURIComponent(b) : '');
const text = (tag, value, cls) => { const e = document.createElement(tag); e.textContent = value; if (cls) e.className = cls; return e; };
let rates = new Map();

async function api(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: { ...headers(), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = res.status === 204 ? null : await res.json();
  if (!res.ok) throw new Error(json && json.error ? json.error.message : res.statusText);
  return json;
}

async function refresh() {
  try {
    const { vips } = await api('GET', '/v1/vips');
    document.getElementById('error').textContent = '';
    render(vips);
  } catch (e) {
    document.getElementById('error').textContent = e.message;
  }
}

function render(vips) {
  const main = document.getElementById('vips');
  main.replaceChildren();
  for (const v of vips) {
    const key = v.protocol + '/' + v.address + ':' + v.port;
    const rate = rates.get(key);
    const section = document.createElement('section');
    section.className = 'vip';
    section.dataset.vip = key;
    const h2 = document.createElement('h2');
    h2.append(
      text('span', key),
      text('span', v.forwarding),
      text('span', (rate ? Math.round(rate.pps) : 0) + ' pkt/s', 'pps'),
      text('span', v.panic ? 'PANIC' : ''),
    );
    section.append(h2);
    const table = document.createElement('table');
    const head = document.createElement('tr');
    for (const t of ['backend', 'health', 'state', 'in ring', 'share', 'weight', '']) head.append(text('th', t));
    table.append(head);
    for (const b of v.backends) {
      const tr = document.createElement('tr');
      tr.dataset.backend = b.address;
      const share = rate && rate.pps > 0 ? (rate.backends.get(b.address) || 0) / rate.pps : 0;
      const bar = text('span', '', 'bar');
      bar.style.width = Math.round(share * 120) + 'px';
      const shareCell = document.createElement('td');
      shareCell.append(bar, text('span', ' ' + Math.round(share * 100) + '%'));
      const weight = document.createElement('input');
      weight.type = 'number'; weight.min = '0'; weight.value = b.weight; weight.className = 'weight';
      weight.addEventListener('change', () => change(v, b.address, { weight: Number(weight.value), state: b.state }));
      const weightCell = document.createElement('td');
      weightCell.append(weight);
      const toggle = text('button', b.state === 'drain' ? 'activate' : 'drain');
      toggle.addEventListener('click', () => change(v, b.address, { weight: b.weight, state: b.state === 'drain' ? 'active' : 'drain' }));
      const actions = document.createElement('td');
      actions.append(toggle);
      tr.append(
        text('td', b.address),
        text('td', b.health + (b.healthReason ? ' (' + b.healthReason + ')' : ''), b.health),
        text('td', b.state),
        text('td', b.inRing ? 'yes' : 'no — ' + (b.reason || '')),
        shareCell,
        weightCell,
        actions,
      );
      table.append(tr);
    }
    section.append(table);
    main.append(section);
  }
}

async function change(v, backend, body) {
  try {
    await api('PUT', path(v, backend), body);
    await refresh();
  } catch (e) {
    document.getElementById('error').textContent = e.message;
  }
}

let socket;
function connect() {
  if (socket) socket.close();
  const url = new URL('/v1/events', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (tokenInput.value) url.searchParams.set('access_token', tokenInput.value);
  socket = new WebSocket(url);
  socket.onopen = () => { document.getElementById('status').textContent = 'live'; };
  socket.onclose = () => { document.getElementById('status').textContent = 'disconnected'; };
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === 'stats') {
      rates = new Map(
        event.vips.map((v) => [
          v.protocol + '/' + v.address + ':' + v.port,
          { pps: v.packetsPerSecond, backends: new Map(v.backends.map((b) => [b.address, b.packetsPerSecond])) },
        ]),
      );
    }
    refresh();
  };
}
refresh();
connect();
</script>
</body>
</html>
`;

export const uiRoute: FastifyPluginAsync = async (app) => {
  app.get('/ui', { schema: uiSchema }, async (_, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
      .send(PAGE),
  );
};
