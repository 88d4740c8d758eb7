/**
 * /metrics through fastify's inject() against a real controller on the in-memory data
 * plane: the split VIP labels, drain told from down, the health-check metrics and
 * their series' life, and the process metrics.
 */
import { afterEach, beforeEach, expect, test } from 'vitest';
import { vipPath } from '../../control/cli/client.js';
import { type ModelDaemon, startModelDaemon } from '../lib/model-daemon.js';

let d: ModelDaemon;
beforeEach(async () => {
  d = await startModelDaemon();
});
afterEach(async () => d.close());

const put = (url: string, payload?: unknown) => d.app.inject({ method: 'PUT', url, payload: payload as object });
const metrics = async () => (await d.app.inject({ method: 'GET', url: '/metrics' })).body;
/** The value of the one sample of `name` with exactly these labels, or undefined. */
const sample = (text: string, name: string, labels: string) =>
  text.match(new RegExp(`^${name}\\{${labels.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\} (\\S+)$`, 'm'))?.[1];

/** Scrapes until `done` holds, for up to 5 s. */
async function scrapeUntil(done: (text: string) => boolean): Promise<string> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const text = await metrics();
    if (done(text)) return text;
    if (Date.now() > deadline) throw new Error(`the metrics never got there:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const V4 = 'protocol="tcp",address="198.19.0.1",port="80"';

test('VIPs are labelled by protocol, address (bare, IPv6 too) and port; backends by address', async () => {
  await put(vipPath('udp', '2001:db8:f::1', 53), { forwarding: 'ipip' });
  await put(vipPath('udp', '2001:db8:f::1', 53, '2001:db8::11'));
  const text = await metrics();
  expect(sample(text, 'xlb_vip_packets_total', 'protocol="udp",address="2001:db8:f::1",port="53"')).toBe('0');
  expect(sample(text, 'xlb_backend_bytes_total', 'protocol="udp",address="2001:db8:f::1",port="53",backend="2001:db8::11"')).toBe('0');
  expect(sample(text, 'xlb_packets_total', 'outcome="tx_ipip"')).toBe('0');
  expect(text).not.toMatch(/\bvip="|\breason="/);
});

test('a drained backend is told from a down one: state and health are gauges with the value as a label', async () => {
  await put(vipPath('tcp', '198.19.0.1', 80), { forwarding: 'ipip' });
  await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.11'), { state: 'drain' });
  await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.12'));
  const text = await metrics();
  const drained = `${V4},backend="198.18.0.11"`;
  expect(sample(text, 'xlb_backend_state', `${drained},state="drain"`)).toBe('1');
  expect(sample(text, 'xlb_backend_state', `${drained},state="active"`)).toBe('0');
  expect(sample(text, 'xlb_backend_health', `${drained},health="up"`)).toBe('1');
  expect(sample(text, 'xlb_backend_health', `${drained},health="down"`)).toBe('0');
  expect(sample(text, 'xlb_backend_in_ring', drained)).toBe('0');
  expect(sample(text, 'xlb_backend_state', `${V4},backend="198.18.0.12",state="active"`)).toBe('1');
  // A VIP without a probing check has no check metrics.
  expect(text).not.toMatch(/^xlb_health_(check_duration_seconds|transitions_total)\{/m);
});

test('a failing check counts its duration and the transition to down; the series go with the backend', async () => {
  // Whatever answers for 198.18.0.99:1 (if anything does), it is not status 599: unknown -> down.
  await put(vipPath('tcp', '198.19.0.1', 80), {
    forwarding: 'ipip',
    healthCheck: { type: 'http', port: 1, expectStatus: 599, intervalMs: 60_000, timeoutMs: 200 },
  });
  await put(vipPath('tcp', '198.19.0.1', 80, '198.18.0.99'));
  const backend = `${V4},backend="198.18.0.99"`;
  const text = await scrapeUntil((t) => sample(t, 'xlb_health_transitions_total', `${backend},to="down"`) === '1');
  expect(sample(text, 'xlb_health_transitions_total', `${backend},to="up"`)).toBe('0');
  expect(sample(text, 'xlb_health_check_duration_seconds_count', `${backend},result="failure"`)).toBe('1');
  expect(sample(text, 'xlb_health_check_duration_seconds_count', `${backend},result="success"`)).toBe('0');
  const seconds = Number(sample(text, 'xlb_health_check_duration_seconds_sum', `${backend},result="failure"`));
  expect(seconds).toBeGreaterThan(0);
  expect(seconds).toBeLessThan(1);
  expect(sample(text, 'xlb_health_check_duration_seconds_bucket', `le="+Inf",${backend},result="failure"`)).toBe('1');
  expect(sample(text, 'xlb_backend_health', `${backend},health="down"`)).toBe('1');

  await d.app.inject({ method: 'DELETE', url: vipPath('tcp', '198.19.0.1', 80, '198.18.0.99') });
  expect(await metrics()).not.toContain('backend="198.18.0.99"');
});

test('the process metrics are there, without the gauges named like counters', async () => {
  const text = await metrics();
  expect(text).toMatch(/^# TYPE process_cpu_seconds_total counter$/m);
  expect(text).toMatch(/^# TYPE nodejs_eventloop_lag_seconds gauge$/m);
  expect(text).toMatch(/^# TYPE nodejs_active_handles gauge$/m);
  expect(text).not.toMatch(/^# TYPE nodejs_active_\w+_total /m);
});

test('closing the app unsubscribes its metrics from the controller', async () => {
  expect(d.controller.listenerCount('checked')).toBe(1);
  await d.app.close();
  expect(d.controller.listenerCount('checked')).toBe(0);
});
