/** docs/grafana-dashboard.json uses only metrics and labels that /metrics exposes, named the Prometheus way. */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { vipPath } from '../control/cli/client.js';
import { packagePath } from '../control/paths.js';
import { startTestDaemon, type TestDaemon } from './lib/daemon.js';

let d: TestDaemon;
beforeAll(async () => {
  d = await startTestDaemon();
  await d.app.inject({ method: 'PUT', url: vipPath('tcp', '198.19.0.1', 80), payload: { forwarding: 'ipip' } });
  await d.app.inject({ method: 'PUT', url: vipPath('tcp', '198.19.0.1', 80, '198.18.0.11') });
});
afterAll(() => d?.close());

test('every metric and label in the dashboard exists in /metrics', async () => {
  const exposition = (await d.app.inject({ method: 'GET', url: '/metrics' })).body;
  const exposed = new Map<string, Set<string>>();
  for (const m of exposition.matchAll(/^# TYPE (\w+) (\w+)$/gm)) exposed.set(m[1]!, new Set());
  for (const m of exposition.matchAll(/^(\w+)\{([^}]*)\}/gm)) for (const l of m[2]!.matchAll(/(\w+)="/g)) exposed.get(m[1]!)?.add(l[1]!);

  const dashboard = JSON.parse(readFileSync(packagePath('docs/grafana-dashboard.json'), 'utf8'));
  const exprs: string[] = dashboard.panels.flatMap((p: { targets: { expr: string }[] }) => p.targets.map((t) => t.expr));
  exprs.push(
    ...dashboard.templating.list.filter((v: { query: unknown }) => typeof v.query === 'string').map((v: { query: string }) => v.query),
  );
  const used = new Set<string>();
  for (const expr of exprs) {
    for (const m of expr.matchAll(/\b(xlb_\w+)(?:\{([^}]*)\})?/g)) {
      const metric = m[1]!;
      used.add(metric);
      expect(exposed.has(metric), `${metric} in /metrics`).toBe(true);
      for (const l of (m[2] ?? '').matchAll(/(\w+)\s*=~?/g)) {
        if (l[1] !== 'instance') expect([...exposed.get(metric)!], `label ${l[1]} of ${metric}`).toContain(l[1]);
      }
    }
  }
  expect(used.size).toBeGreaterThanOrEqual(10);
});

test('metric names follow Prometheus conventions', async () => {
  const exposition = (await d.app.inject({ method: 'GET', url: '/metrics' })).body;
  for (const m of exposition.matchAll(/^# TYPE (\w+) (\w+)$/gm)) {
    expect(m[1]).toMatch(/^xlb_/);
    if (m[2] === 'counter') expect(m[1]).toMatch(/_total$/);
    else expect(m[1]).not.toMatch(/_total$/);
  }
});
