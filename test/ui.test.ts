/**
 * The dashboard in headless Chromium (Debian's, driven by playwright-core) on a real
 * data plane carrying traffic: every field it shows matches the API's answers, a weight
 * typed while stats events stream keeps its focus and is sent on Enter without touching
 * the state, its controls change the daemon's state with the operator's token, and its
 * screenshot is a real rendering.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import WebSocket from 'ws';
import { buildApp } from '../control/api/app.js';
import {
  CHECK_DEFAULTS,
  formatBytes,
  formatCheck,
  formatClock,
  formatCount,
  formatDuration,
  formatLatency,
  formatPerCpu,
  formatRate,
  formatShare,
  formatVia,
  formatVipSettings,
} from '../control/api/ui/format.js';
import { vipPath } from '../control/cli/client.js';
import type { StatsView, StatusView, TrafficView, VipView } from '../control/controller/views.js';
import { testConfig } from '../control/dataplane/test-dataplane.js';
import { parseAddress, parseMac } from '../control/net/address.js';
import { startTestDaemon, type TestDaemon } from './lib/daemon.js';
import { tcp4 } from './lib/frames.js';

const TOKEN = 'dashboard-test-token-0123';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const WEB = { protocol: 'tcp', address: '198.19.0.1', port: 80 } as const;
const DNS = { protocol: 'udp', address: '2001:db8:f::10', port: 53 } as const;
let d: TestDaemon;
let app: Awaited<ReturnType<typeof buildApp>>;
let browser: Browser;
let base: string;
let dir: string;
/** The test's own subscription to /v1/events: the stats events the page gets too. */
let events: WebSocket;
let latestStats: StatsView | null = null;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xlb-ui-'));
  d = await startTestDaemon();
  d.dp.setConfig(testConfig({ gatewayMac: parseMac('02:00:00:00:00:fe'), sourceV4: parseAddress('198.18.0.2').bytes }));
  app = await buildApp({ controller: d.controller, token: TOKEN });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  // Whatever answers on port 1 (if anything does), it is not status 599: every backend is
  // down with a reason after one check, the VIP in panic; one check an hour keeps its time.
  const healthCheck = { type: 'http', port: 1, expectStatus: 599, intervalMs: 3_600_000, timeoutMs: 300 };
  await put(vipPath(WEB.protocol, WEB.address, WEB.port), { forwarding: 'ipip', healthCheck });
  for (const b of ['198.18.0.11', '198.18.0.12']) await put(vipPath(WEB.protocol, WEB.address, WEB.port, b), { weight: 2 });
  await put(vipPath(DNS.protocol, DNS.address, DNS.port), { forwarding: 'ipip' });
  await put(vipPath(DNS.protocol, DNS.address, DNS.port, '2001:db8::11'), { weight: 1 });
  events = new WebSocket(`${base.replace('http', 'ws')}/v1/events`, { headers: AUTH });
  events.on('message', (data) => {
    const event = JSON.parse(String(data));
    if (event.type === 'stats') latestStats = event;
  });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  events?.close();
  await browser?.close();
  await app?.close();
  await d?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function put(url: string, payload: object) {
  const res = await app.inject({ method: 'PUT', url, payload, headers: AUTH });
  expect(res.statusCode, res.body).toBeLessThan(300);
}

async function get<T>(url: string): Promise<T> {
  const res = await app.inject({ method: 'GET', url, headers: AUTH });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

const backendView = (key: typeof WEB, address: string) => d.controller.vip(key).backends.find((b) => b.address === address)!;

/** The text of every data-field under root (an input's value, a sparkline's last sample), leaving out those of nested tables. */
const fieldsOf = (root: Locator, withTables: boolean) =>
  root.evaluate(
    (element, tables) =>
      Object.fromEntries(
        [...element.querySelectorAll<HTMLElement>('[data-field]')]
          .filter((e) => tables || !e.closest('table'))
          .map((e) => [
            e.dataset.field,
            e instanceof HTMLInputElement ? e.value : e instanceof SVGElement ? e.dataset.last : e.textContent,
          ]),
      ),
    withTables,
  );

function trafficText(t: TrafficView & { flows: number }) {
  return {
    packetsPerSecond: formatRate(t.packetsPerSecond, 'pkt/s'),
    bitsPerSecond: formatRate(t.bytesPerSecond * 8, 'bit/s'),
    packets: formatCount(t.packets),
    bytes: formatBytes(t.bytes),
    flows: formatCount(t.flows),
    history: String(t.packetsPerSecond), // the sparkline's last sample
  };
}

/** What the page should show for a VIP and each backend, from the API's view and stats. */
function expectedVip(v: VipView, stats: StatsView['vips'][number]) {
  return {
    vip: {
      settings: formatVipSettings(v),
      panic: v.panic ? 'PANIC' : '',
      ringBackends: `${v.ringBackends} of ${v.backends.length}`,
      healthCheck: formatCheck(v.healthCheck, v.port, CHECK_DEFAULTS),
      ...trafficText(stats),
    },
    backends: Object.fromEntries(
      v.backends.map((b) => [
        b.address,
        {
          health: b.health,
          via: formatVia(b.via),
          healthReason: b.healthReason ?? '',
          lastCheck: formatClock(b.lastCheckAt),
          lastCheckMs: formatLatency(b.lastCheckMs),
          lastFailure: b.lastFailureAt ? formatClock(b.lastFailureAt) : '',
          lastFailureReason: b.lastFailureReason ?? '',
          state: b.state,
          weight: String(b.weight),
          inRing: b.inRing ? 'yes' : 'no',
          ringReason: b.inRing ? `${b.slots} slots` : (b.reason ?? ''),
          toggle: b.state === 'drain' ? 'activate' : 'drain',
          ...trafficText(stats.backends.find((s) => s.address === b.address)!),
        },
      ]),
    ),
  };
}

/** What the page shows for a VIP (by its key text) and each backend. */
async function shownVip(page: Page, key: string) {
  const section = page.locator(`section.vip[data-vip="${key}"]`);
  const rows = await section.locator('tr[data-backend]').all();
  const backends = await Promise.all(rows.map(async (row) => [await row.getAttribute('data-backend'), await fieldsOf(row, true)]));
  return { vip: await fieldsOf(section, false), backends: Object.fromEntries(backends) };
}

/**
 * Waits until the page shows every VIP as the API has it, with the stats of the latest
 * event (tick: while traffic flows) or of /v1/stats (once it stopped and the rates are zero).
 */
async function expectVipsShown(page: Page, tick: boolean) {
  await expect
    .poll(
      async () => {
        const { vips } = await get<{ vips: VipView[] }>('/v1/vips');
        const stats = tick ? latestStats! : await get<StatsView>('/v1/stats');
        const shown = await Promise.all(
          vips.map((v) => shownVip(page, `${v.protocol}/${v.address.includes(':') ? `[${v.address}]` : v.address}:${v.port}`)),
        );
        const expected = vips.map((v) =>
          expectedVip(
            v,
            stats.vips.find((s) => s.address === v.address && s.port === v.port)!,
          ),
        );
        return differences(shown, expected);
      },
      { timeout: 8000, interval: 50 },
    )
    .toEqual([]);
}

/** Where two JSON values differ, as "path: shown ≠ expected" lines. */
function differences(shown: unknown, expected: unknown, path = ''): string[] {
  if (typeof shown === 'object' && shown && typeof expected === 'object' && expected) {
    const keys = new Set([...Object.keys(shown), ...Object.keys(expected)]);
    return [...keys].flatMap((k) =>
      differences((shown as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k], `${path}/${k}`),
    );
  }
  return shown === expected ? [] : [`${path}: ${JSON.stringify(shown)} ≠ ${JSON.stringify(expected)}`];
}

const ticks = (page: Page) => page.evaluate(() => Number(document.body.dataset.ticks));

test('every field matches the API, a weight typed while events stream is kept and sent, drain changes only the state', async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  await page.goto(`${base}/ui`);
  // Without the token the API refuses, and the page says so.
  await expect.poll(() => page.locator('#error').textContent()).toMatch(/bearer token/);
  await page.fill('#token', TOKEN);
  await page.dispatchEvent('#token', 'change');
  await expect.poll(() => page.locator('#status').textContent()).toBe('live');
  const web = page.locator('section.vip[data-vip="tcp/198.19.0.1:80"]');
  const dnsWeight = page.locator('section.vip[data-vip="udp/[2001:db8:f::10]:53"] input.weight');
  // Changes made elsewhere show within a second, twice in a row: the page reads the VIPs
  // again on config events (its poll, every 5 s, could bring at most one of them).
  for (const weight of [4, 5]) {
    await put(vipPath(DNS.protocol, DNS.address, DNS.port, '2001:db8::11'), { weight });
    await expect.poll(() => dnsWeight.inputValue(), { timeout: 1000 }).toBe(String(weight));
  }
  await expect.poll(() => web.locator('[data-field="panic"]').textContent()).toBe('PANIC');

  // Steady traffic over 64 flows while the page is watched. One run per packet: with
  // repeat > 1 the program would see its own encapsulated output.
  const frames = Array.from({ length: 64 }, (_, i) => tcp4({ sport: 4000 + i }));
  const traffic = setInterval(() => {
    for (const data of frames) expect(d.dp.program.testRun({ data }).retval).toBe(3 /* XDP_TX */);
  }, 10);
  const weight = web.locator('tr[data-backend="198.18.0.11"] input.weight');
  try {
    await expect.poll(() => web.locator('.summary [data-field="packetsPerSecond"]').textContent(), { timeout: 5000 }).not.toBe('0 pkt/s');
    await expectVipsShown(page, true);

    // Drain: the state changes, the weight stays.
    await web.locator('tr[data-backend="198.18.0.11"] button').click();
    await expect.poll(() => backendView(WEB, '198.18.0.11').state).toBe('drain');
    expect(backendView(WEB, '198.18.0.11').weight).toBe(2);
    await expect.poll(() => web.locator('tr[data-backend="198.18.0.11"] [data-field="state"]').textContent()).toBe('drain');

    // A weight typed a character a few stats ticks apart, and a config change (an event,
    // and a new read of the VIPs) in the middle: focus and the typed text stay, nothing is
    // sent before Enter, and Enter sends the weight with the state left as it is.
    await weight.click();
    await weight.press('Control+A');
    for (const [i, key] of ['1', '7'].entries()) {
      const before = await ticks(page);
      if (i === 1) await put(vipPath(DNS.protocol, DNS.address, DNS.port, '2001:db8::11'), { weight: 3 });
      await expect.poll(() => ticks(page), { timeout: 5000 }).toBeGreaterThanOrEqual(before + 2);
      expect(await weight.evaluate((e) => e === document.activeElement)).toBe(true);
      await weight.press(key);
      await expect.poll(() => ticks(page), { timeout: 5000 }).toBeGreaterThanOrEqual(before + 4);
      expect(await weight.evaluate((e) => e === document.activeElement)).toBe(true);
      expect(await weight.inputValue()).toBe(i === 0 ? '1' : '17');
    }
    await expect.poll(() => dnsWeight.inputValue()).toBe('3');
    expect(await weight.inputValue()).toBe('17');
    expect(backendView(WEB, '198.18.0.11').weight).toBe(2);
    await weight.press('Enter');
    await expect.poll(() => backendView(WEB, '198.18.0.11').weight).toBe(17);
    expect(backendView(WEB, '198.18.0.11').state).toBe('drain');
    expect(await weight.evaluate((e) => e === document.activeElement)).toBe(true);

    // A weight that is no number: refused on the page, naming the field; nothing sent.
    await weight.fill('x1');
    await weight.press('Enter');
    await expect.poll(() => page.locator('#action-error').textContent()).toMatch(/198\.18\.0\.11: weight must be a whole number/);
    expect(backendView(WEB, '198.18.0.11').weight).toBe(17);
    await weight.press('Escape');
    await expect.poll(() => weight.inputValue()).toBe('17');
  } finally {
    clearInterval(traffic);
  }

  // Traffic stopped: totals, rates (down to zero), flows and settings as the API has them.
  await expectVipsShown(page, false);
  const stats = await get<StatsView>('/v1/stats');
  const webStats = stats.vips.find((v) => v.address === WEB.address)!;
  const table = d.dp.flowTableUse(Infinity);
  const ids = d.controller.storedVip(WEB)!.backends.map((b) => b.id);
  // The API's flows are the connection table's, by backend; the drained one still holds its flows.
  expect(webStats.backends.map((b) => b.flows)).toEqual(ids.map(table.backendFlows));
  expect(webStats.flows).toBe(64);
  expect(webStats.backends[0]!.flows).toBeGreaterThan(0);
  expect(stats.flowTable).toMatchObject({ slots: d.dp.flowCapacity, flows: 64 });

  // Globally: the connection table (by state, with its evictions), the flood banner, packets by outcome and the daemon.
  const byClass = (c: StatsView['flowTable']['states']) => [c.new, c.established, c.closing].map(formatCount).join(' · ');
  expect(await fieldsOf(page.locator('#flow-table'), true)).toEqual({
    flows: formatCount(stats.flowTable.flows),
    slots: formatCount(stats.flowTable.slots),
    fill: formatShare(stats.flowTable.flows, stats.flowTable.slots),
    newFlows: formatPerCpu(stats.flood.newFlowsPerSecond),
    states: byClass(stats.flowTable.states),
    evictions: byClass(stats.flowTable.evictions),
    unrecorded: formatCount(stats.flowTable.unrecorded),
  });
  expect(stats.flood.active).toBe(false);
  expect(await page.locator('#flood').isVisible()).toBe(false);
  const outcomes = await page
    .locator('#outcomes tr[data-outcome]')
    .evaluateAll((rows) =>
      rows.map((row) => [
        row.getAttribute('data-outcome'),
        row.querySelector('[data-field="packets"]')!.textContent,
        row.querySelector('[data-field="bytes"]')!.textContent,
      ]),
    );
  expect(outcomes).toEqual(Object.entries(stats.outcomes).map(([name, t]) => [name, formatCount(t.packets), formatBytes(t.bytes)]));
  expect(stats.outcomes.tx_ipip!.packets).toBeGreaterThan(0);
  const status = await get<StatusView>('/v1/status');
  const daemon = await fieldsOf(page.locator('#daemon'), true);
  expect(daemon).toMatchObject({
    version: status.version,
    interface: status.interface,
    xdpMode: status.xdpMode,
    attached: status.attached ? 'yes' : `no — ${status.attachReason ?? ''}`,
  });
  expect([status.uptimeSeconds - 1, status.uptimeSeconds, status.uptimeSeconds + 1].map(formatDuration)).toContain(daemon.uptime);

  // Several minutes of history are kept; a few seconds of it are here.
  const samples = await web.locator('.summary svg.spark').getAttribute('data-samples');
  expect(Number(samples)).toBeGreaterThanOrEqual(5);

  // The event stream dropped by the daemon comes back by itself, ticking again.
  const before = await ticks(page);
  for (const client of app.websocketServer.clients) client.terminate();
  await expect.poll(() => page.locator('#status').textContent()).toBe('disconnected');
  await expect.poll(() => ticks(page), { timeout: 8000 }).toBeGreaterThan(before + 1);
  expect(await page.locator('#status').textContent()).toBe('live');

  const file = process.env.XLB_UI_SCREENSHOT ?? join(dir, 'dashboard.png');
  await page.screenshot({ path: file });
  const png = readFileSync(file);
  expect(png.subarray(1, 4).toString()).toBe('PNG');
  expect(png.readUInt32BE(16)).toBe(1400); // width from the IHDR chunk
  expect(png.readUInt32BE(20)).toBe(800);
  expect(png.length).toBeGreaterThan(10_000); // text and tables, not a blank page
  await page.close();
});
