/**
 * /metrics of a real `xlb serve` in the netns lab with two VIPs (one IPv6), backends
 * up, down and drained, and traffic through it: `promtool check metrics` accepts it,
 * it says what happened under split labels, and docs/grafana-dashboard.json and the
 * alert examples of docs/operations.md ask only for metrics and labels it exposes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { parse } from 'yaml';
import { vipPath } from '../control/cli/client.js';
import type { VipView } from '../control/controller/views.js';
import { packagePath } from '../control/paths.js';
import { type DaemonProcess, Lab, LAB } from '../scripts/lab/lab.js';

const CHECK = { type: 'tcp', intervalMs: 200, timeoutMs: 200, rise: 1, fall: 1 } as const;
/** On the lab's segment, but no host has it: its checks fail. */
const ABSENT = '198.18.0.19';
const V4 = `protocol="tcp",address="${LAB.vip4}",port="${LAB.tcpPort}"`;
const V6 = `protocol="udp",address="${LAB.vip6}",port="${LAB.udpPort}"`;

let lab: Lab;
let daemon: DaemonProcess;
let exposition: string;

async function api<T = VipView>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await daemon.api.request<T>(method, path, body);
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

/** Polls the VIP until `done` holds, for up to 10 s. */
async function until(path: string, done: (v: VipView) => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const view = await api('GET', path);
    if (done(view)) return;
    if (Date.now() > deadline) throw new Error(`${path} never got there: ${JSON.stringify(view.backends)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  lab = await Lab.create('metrics');
  daemon = await lab.startDaemon();
  const vip4 = vipPath('tcp', LAB.vip4, LAB.tcpPort);
  await api('PUT', vip4, { forwarding: 'dsr', healthCheck: CHECK });
  await api('PUT', vipPath('tcp', LAB.vip4, LAB.tcpPort, LAB.backend4(1)));
  await api('PUT', vipPath('tcp', LAB.vip4, LAB.tcpPort, LAB.backend4(2)), { state: 'drain' });
  await api('PUT', vipPath('tcp', LAB.vip4, LAB.tcpPort, ABSENT));
  const vip6 = vipPath('udp', LAB.vip6, LAB.udpPort);
  await api('PUT', vip6, { forwarding: 'dsr' });
  await api('PUT', vipPath('udp', LAB.vip6, LAB.udpPort, LAB.backend6(1)));
  await until(vip4, (v) => v.backends.every((b) => b.health !== 'unknown') && v.ringBackends === 1);
  await until(vip6, (v) => v.ringBackends === 1);
  for (const summary of [await lab.client('tcp', LAB.vip4, 40), await lab.client('udp', LAB.vip6, 20)]) expect(summary.errors).toEqual([]);
  exposition = (await daemon.api.request<string>('GET', '/metrics')).body;
});
afterAll(() => lab?.destroy());

/** The value of the one sample of `name` with exactly these labels (in this order), or NaN. */
const sample = (name: string, labels: string) => {
  const line = exposition.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return Number(line?.split(' ')[1] ?? NaN);
};

test('promtool check metrics accepts the live /metrics', () => {
  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  expect(promtool.stdout + promtool.stderr).toBe('');
  expect(promtool.status).toBe(0);
});

test('traffic, health and state under protocol, address, port and backend labels', () => {
  const up = `${V4},backend="${LAB.backend4(1)}"`;
  const drained = `${V4},backend="${LAB.backend4(2)}"`;
  const down = `${V4},backend="${ABSENT}"`;
  expect(sample('xlb_vip_packets_total', V4)).toBeGreaterThanOrEqual(40);
  expect(sample('xlb_vip_packets_total', V6)).toBeGreaterThanOrEqual(20);
  expect(sample('xlb_backend_packets_total', up)).toBe(sample('xlb_vip_packets_total', V4));
  expect(sample('xlb_backend_packets_total', `${V6},backend="${LAB.backend6(1)}"`)).toBe(sample('xlb_vip_packets_total', V6));
  expect(sample('xlb_packets_total', 'outcome="tx_dsr"')).toBeGreaterThanOrEqual(60);

  expect(sample('xlb_backend_health', `${up},health="up"`)).toBe(1);
  expect(sample('xlb_backend_health', `${down},health="down"`)).toBe(1);
  expect(sample('xlb_backend_health', `${drained},health="up"`)).toBe(1);
  expect(sample('xlb_backend_state', `${drained},state="drain"`)).toBe(1);
  expect(sample('xlb_backend_state', `${down},state="active"`)).toBe(1);
  for (const notInRing of [drained, down]) expect(sample('xlb_backend_in_ring', notInRing)).toBe(0);

  expect(sample('xlb_health_transitions_total', `${up},to="up"`)).toBe(1);
  expect(sample('xlb_health_transitions_total', `${down},to="down"`)).toBe(1);
  expect(sample('xlb_health_check_duration_seconds_count', `${up},result="success"`)).toBeGreaterThanOrEqual(1);
  expect(sample('xlb_health_check_duration_seconds_count', `${down},result="failure"`)).toBeGreaterThanOrEqual(1);
  // The VIP without a check has no check metrics.
  expect(exposition).not.toMatch(new RegExp(`^xlb_health_\\w+\\{${V6}`, 'm'));
});

interface Panel {
  type: string;
  title: string;
  targets: { expr: string; legendFormat?: string; instant?: boolean; format?: string }[];
}
const dashboard: { panels: Panel[]; templating: { list: { type: string; query: unknown }[] } } = JSON.parse(
  readFileSync(packagePath('docs/grafana-dashboard.json'), 'utf8'),
);
/** The alert examples of docs/operations.md: the YAML block of rule groups. */
const alerts: { groups: { rules: { alert: string; expr: string }[] }[] } = parse(
  /```yaml\n(groups:\n[^`]*)```/.exec(readFileSync(packagePath('docs/operations.md'), 'utf8'))![1]!,
);
/** Every query of the dashboard, with the legend it draws with, and of the alert examples. */
const queries = [
  ...dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: p.title, expr: t.expr, legend: t.legendFormat ?? '' }))),
  ...alerts.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr, legend: '' }))),
  ...dashboard.templating.list.flatMap((v) => (v.type === 'query' ? [{ where: 'variables', expr: String(v.query), legend: '' }] : [])),
];

test('every metric and label the dashboard and the alert examples ask for is in the live /metrics', () => {
  // Sample names (histograms' _bucket, _sum, _count included) and their label names; declared families without samples yet.
  const exposed = new Map<string, Set<string>>([...exposition.matchAll(/^# TYPE (\w+) /gm)].map((m) => [m[1]!, new Set<string>()]));
  for (const m of exposition.matchAll(/^(\w+)(?:\{([^}]*)\})? /gm)) {
    const labels = exposed.get(m[1]!) ?? new Set<string>();
    for (const l of (m[2] ?? '').matchAll(/(\w+)="/g)) labels.add(l[1]!);
    exposed.set(m[1]!, labels);
  }
  const used = new Set<string>();
  for (const { where, expr, legend } of queries) {
    const metrics = [...expr.matchAll(/\b((?:xlb|process|nodejs)_\w+)/g)].map((m) => m[1]!);
    expect(metrics.length, `${where}: ${expr}`).toBeGreaterThan(0);
    // What Prometheus adds to every series it scrapes.
    const labels = new Set(['instance', 'job']);
    for (const metric of metrics) {
      used.add(metric);
      expect(exposed.has(metric), `${where}: ${metric} in /metrics`).toBe(true);
      for (const label of exposed.get(metric) ?? []) labels.add(label);
    }
    const named = [
      ...[...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...m[1]!.matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!)),
      ...[...expr.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)].flatMap((m) =>
        m[1]!.split(',').map((l) => l.trim()),
      ),
      ...[...expr.matchAll(/label_values\([^,]+,\s*(\w+)\)/g)].map((m) => m[1]!),
      ...[...legend.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]!),
    ];
    for (const label of named) expect([...labels], `${where}: label ${label} in ${expr}`).toContain(label);
  }
  expect(used.size).toBeGreaterThanOrEqual(15);
});

test("the dashboard's and the alert examples' queries parse as PromQL and its tables are instant queries in table format", () => {
  // promtool checks the expressions of a rule file: one recording rule per query, its variables filled in.
  const rules = queries
    .filter((q) => !q.expr.startsWith('label_values('))
    .map((q, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(q.expr.replaceAll(/\$\w+/g, '.*'))}`);
  const file = `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`;
  const dir = mkdtempSync(join(tmpdir(), 'xlb-dashboard-'));
  try {
    writeFileSync(join(dir, 'rules.yml'), file);
    const promtool = spawnSync('promtool', ['check', 'rules', join(dir, 'rules.yml')], { encoding: 'utf8' });
    expect(promtool.status, promtool.stdout + promtool.stderr).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const tables = dashboard.panels.filter((p) => p.type === 'table');
  expect(tables.length).toBeGreaterThanOrEqual(2);
  for (const table of tables)
    for (const target of table.targets) expect(target, table.title).toMatchObject({ instant: true, format: 'table' });
});
