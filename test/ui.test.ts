/**
 * The dashboard in headless Chromium (Debian's, driven by playwright-core): it shows
 * the VIPs and backends, updates live, its controls change the daemon's state with
 * the operator's token, and its screenshot is a real rendering.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { buildApp } from '../control/api/app.js';
import { vipPath } from '../control/cli/client.js';
import { parseAddress, parseMac } from '../control/net/address.js';
import { testConfig } from '../control/dataplane/test-dataplane.js';
import { startTestDaemon, type TestDaemon } from './lib/daemon.js';
import { tcp4 } from './lib/frames.js';

const TOKEN = 'dashboard-test-token-0123';
let d: TestDaemon;
let app: Awaited<ReturnType<typeof buildApp>>;
let browser: Browser;
let base: string;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'xlb-ui-'));
  d = await startTestDaemon();
  app = await buildApp({ controller: d.controller, token: TOKEN });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const auth = { authorization: `Bearer ${TOKEN}` };
  await app.inject({ method: 'PUT', url: vipPath('tcp', '198.19.0.1', 80), payload: { forwarding: 'ipip' }, headers: auth });
  for (const b of ['198.18.0.11', '198.18.0.12'])
    await app.inject({ method: 'PUT', url: vipPath('tcp', '198.19.0.1', 80, b), payload: { weight: 2 }, headers: auth });
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
  await browser?.close();
  await app?.close();
  await d?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('shows VIPs and backends, drains and reweights with the token, renders a real page', async () => {
  const page = await browser.newPage({ viewport: { width: 1000, height: 600 } });
  await page.goto(`${base}/ui`);
  // Without the token the API refuses, and the page says so.
  await expect.poll(() => page.locator('#error').textContent()).toMatch(/bearer token/);
  await page.fill('#token', TOKEN);
  await page.dispatchEvent('#token', 'change');

  const vip = page.locator('section.vip[data-vip="tcp/198.19.0.1:80"]');
  await vip.waitFor();
  await expect.poll(() => page.locator('#status').textContent()).toBe('live');
  expect(await vip.locator('tr[data-backend]').count()).toBe(2);
  expect(await vip.locator('tr[data-backend="198.18.0.11"] td').nth(1).textContent()).toBe('up');

  // Live rates: packets through the balancer show up within a stats tick.
  d.dp.setConfig(testConfig({ gatewayMac: parseMac('02:00:00:00:00:fe'), sourceV4: parseAddress('198.18.0.2').bytes }));
  const frame = tcp4({ sport: 4000 });
  // Steady traffic while the page is watched. One run per packet: with repeat > 1 the
  // program would see its own encapsulated output.
  const traffic = setInterval(() => {
    for (let i = 0; i < 100; i++) expect(d.dp.program.testRun({ data: frame }).retval).toBe(3 /* XDP_TX */);
  }, 10);
  try {
    await expect.poll(() => vip.locator('.pps').textContent(), { timeout: 5000 }).not.toBe('0 pkt/s');
    await expect
      .poll(() => vip.locator('tr[data-backend] td:nth-child(5)').allTextContents(), { timeout: 5000 })
      .toContainEqual(expect.stringMatching(/ [1-9]\d*%$/));
  } finally {
    clearInterval(traffic);
  }

  await vip.locator('tr[data-backend="198.18.0.11"] button').click();
  await expect.poll(() => d.controller.vip({ protocol: 'tcp', address: '198.19.0.1', port: 80 }).backends[0]!.state).toBe('drain');
  await expect.poll(() => vip.locator('tr[data-backend="198.18.0.11"] td').nth(2).textContent()).toBe('drain');

  await vip.locator('tr[data-backend="198.18.0.12"] input.weight').fill('5');
  await vip.locator('tr[data-backend="198.18.0.12"] input.weight').dispatchEvent('change');
  await expect.poll(() => d.controller.vip({ protocol: 'tcp', address: '198.19.0.1', port: 80 }).backends[1]!.weight).toBe(5);

  const file = process.env.XLB_UI_SCREENSHOT ?? join(dir, 'dashboard.png');
  await page.screenshot({ path: file });
  const png = readFileSync(file);
  expect(png.subarray(1, 4).toString()).toBe('PNG');
  expect(png.readUInt32BE(16)).toBe(1000); // width from the IHDR chunk
  expect(png.readUInt32BE(20)).toBe(600);
  expect(png.length).toBeGreaterThan(10_000); // text and tables, not a blank page
  await page.close();
});
