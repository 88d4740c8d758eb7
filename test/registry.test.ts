/**
 * A forwarding mode and a check type that exist only in this test, added through the
 * registries: the schema, the plan, the family rules, the health monitor and the CLI
 * help pick them up with no other edit.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import type { ForwardingMode } from '../control/forwarding/mode.js';
import { forwardingModes } from '../control/forwarding/registry.js';
import { type CheckSpec, defineCheckType } from '../control/checks/check-type.js';
import { checkTypes, resolveCheck } from '../control/checks/registry.js';
import { packagePath } from '../control/paths.js';
import type { ModelDaemon } from './lib/model-daemon.js';

const GUE_CODE = 9;
const gue: ForwardingMode = {
  name: 'gue-test',
  description: 'throwaway encapsulation',
  code: GUE_CODE,
  unresolvedMacReason: 'gue-test needs the MAC',
  familyConflict: (vipFamily, backendFamily, backendAddress) =>
    vipFamily === backendFamily ? null : `gue-test keeps the family: ${backendAddress}`,
};
const probed: CheckSpec[] = [];
const answer = defineCheckType({
  name: 'answer-test',
  description: 'throwaway: the answer option is the result',
  options: { answer: z.enum(['up', 'down']).default('down').describe('What the probe reports, default down') },
  protocol: 'tcp',
  probe: async (spec) => {
    probed.push(spec);
    return spec.answer === 'up' ? null : `answered ${spec.answer}`;
  },
});
forwardingModes.set(gue.name, gue);

// The forwarding enum is built from its registry when the schema loads: after the entry above.
const { healthCheckSchema, vipSpecSchema, storedVipSchema } = await import('../control/state/schema.js');
const { planVip } = await import('../control/reconciler/plan.js');
const { backendConflict } = await import('../control/state/invariants.js');
const { HealthMonitor } = await import('../control/health/checker.js');
const { startModelDaemon } = await import('./lib/model-daemon.js');

// The check schema is built at its first use: a type registered after it loaded is in it.
checkTypes.set(answer.name, answer);

const MAC = Buffer.from([2, 0, 0, 0, 0, 1]);

describe('a registered forwarding mode', () => {
  test('the schema takes it and still refuses a name no entry has', () => {
    expect(vipSpecSchema.parse({ forwarding: 'gue-test' }).forwarding).toBe('gue-test');
    const refused = vipSpecSchema.safeParse({ forwarding: 'gre' });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]?.path).toEqual(['forwarding']);
  });

  test("the plan uses its code and its MAC rule; the family rule is the entry's", () => {
    const vip = storedVipSchema.parse({
      protocol: 'tcp',
      address: '198.18.0.10',
      port: 80,
      id: 0,
      forwarding: 'gue-test',
      backends: [
        { address: '198.18.1.1', id: 0 },
        { address: '198.18.1.2', id: 1 },
      ],
    });
    const plan = planVip(vip, { health: () => 'up', mac: (address) => (address === '198.18.1.1' ? MAC : null) });
    expect(plan.forwarding).toBe(GUE_CODE);
    expect(plan.backends.map((b) => [b.address, b.inRing, b.reason])).toEqual([
      ['198.18.1.1', true, null],
      ['198.18.1.2', false, 'gue-test needs the MAC'],
    ]);
    expect(backendConflict(vip, '2001:db8::1')).toBe('gue-test keeps the family: 2001:db8::1');
    expect(backendConflict(vip, '198.18.1.3')).toBeNull();
  });
});

describe('a registered check type', () => {
  test('the schema takes its type and options and refuses a bad option or an unknown type', () => {
    const spec = vipSpecSchema.parse({ forwarding: 'dsr', healthCheck: { type: 'answer-test', answer: 'up' } });
    expect(spec.healthCheck).toEqual({ type: 'answer-test', via: 'vip', answer: 'up' });
    const badOption = vipSpecSchema.safeParse({ forwarding: 'dsr', healthCheck: { type: 'answer-test', answer: 'sideways' } });
    expect(badOption.error?.issues[0]?.path).toEqual(['healthCheck', 'answer']);
    const unknown = vipSpecSchema.safeParse({ forwarding: 'dsr', healthCheck: { type: 'icmp' } });
    expect(unknown.error?.issues[0]?.path).toEqual(['healthCheck', 'type']);
  });

  test('its probe runs through the health monitor with its defaults applied', async () => {
    const VIP = { address: '198.19.0.1', port: 80, forwarding: 'dsr' };
    const monitor = new HealthMonitor();
    try {
      const changes: string[] = [];
      monitor.on('change', (change) => changes.push(`${change.key} ${change.to} ${change.reason}`));
      const up = resolveCheck(
        healthCheckSchema.parse({ type: 'answer-test', answer: 'up', via: 'direct', intervalMs: 100 }),
        '198.18.1.1',
        VIP,
      );
      const down = resolveCheck(healthCheckSchema.parse({ type: 'answer-test', via: 'direct', intervalMs: 100 }), '198.18.1.2', VIP);
      monitor.sync(
        new Map([
          ['up', up!],
          ['down', down!],
        ]),
      );
      await expect.poll(() => changes.sort(), { timeout: 5000 }).toEqual(['down down direct to 198.18.1.2: answered down', 'up up null']);
      expect(probed.find((spec) => spec.address === '198.18.1.2')).toMatchObject({
        type: 'answer-test',
        port: 80,
        answer: 'down',
        timeoutMs: 1000,
        rise: 2,
        fall: 3,
      });
    } finally {
      monitor.close();
    }
  });
});

describe('a check type whose option is named like a field every check has', () => {
  test.each(['type', 'address', 'port', 'intervalMs'])('%s is refused, naming the type and the option', (option) => {
    const clash = defineCheckType({ name: 'clash-test', description: 'throwaway', options: { [option]: z.string() }, probe: null });
    expect(() => checkTypes.set(clash.name, clash)).toThrow(new RegExp(`"clash-test": ${option} is a field of every check`));
    expect(checkTypes.has(clash.name)).toBe(false);
  });
});

describe('a check type registered after the check schema was built', () => {
  test('is refused, naming the type', () => {
    expect(healthCheckSchema.parse({ type: 'tcp' })).toEqual({ type: 'tcp', via: 'vip' });
    const late = defineCheckType({ name: 'late-test', description: 'throwaway', options: {}, probe: null });
    expect(() => checkTypes.set(late.name, late)).toThrow(/"late-test": the check schema was built already/);
    expect(() => checkTypes.delete(answer.name)).toThrow(/"answer-test": the check schema was built already/);
    expect(healthCheckSchema.safeParse({ type: 'late-test' }).error?.issues[0]?.path).toEqual(['type']);
  });
});

describe('the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-registry-'));
  // The CLI runs from dist/ in its own process: a preloaded module adds the same entries there.
  const register = join(dir, 'register.mjs');
  const url = (path: string) => JSON.stringify(pathToFileURL(packagePath(path)).href);
  writeFileSync(
    register,
    [
      `const { z } = await import(${url('node_modules/zod/index.js')});`,
      `const { forwardingModes } = await import(${url('dist/control/forwarding/registry.js')});`,
      `const { checkTypes } = await import(${url('dist/control/checks/registry.js')});`,
      `forwardingModes.set('gue-test', ${JSON.stringify({ name: gue.name, description: gue.description })});`,
      `checkTypes.set('answer-test', { ...${JSON.stringify({ name: answer.name, description: answer.description })},`,
      `  options: { answer: z.enum(['up', 'down']).default('down').describe('What the probe reports') } });`,
    ].join('\n'),
  );
  const xlb = (...args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', pathToFileURL(register).href, packagePath('dist/control/cli/main.js'), ...args]);
  let d: ModelDaemon;
  let api: string;
  beforeAll(async () => {
    d = await startModelDaemon();
    const socket = join(dir, 'api.sock');
    await d.app.listen({ path: socket });
    api = `unix:${socket}`;
  });
  afterAll(async () => {
    await d?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('lists the registered names for --forwarding and --health-check, and a flag per check option', async () => {
    const { stdout } = await xlb('vip', 'add', '--help');
    expect(stdout).toMatch(/--forwarding <method>\s+dsr, ipip or gue-test \(required\)\n/);
    expect(stdout).toMatch(/--health-check <type>\s+tcp, http, udp, none or answer-test \(default none\)\n/);
    expect(stdout.replace(/\s+/g, ' ')).toMatch(/--hc-answer <value> answer-test: up or down: What the probe reports \(default down\) --/);
  });

  test("sends the registered type's option from its flag, and the daemon stores it", async () => {
    const vipAdd = (address: string, type: string, answer: string) =>
      xlb('vip', 'add', 'tcp', address, '80', '--forwarding', 'ipip', '--health-check', type, '--hc-answer', answer, '--api', api);
    await vipAdd('198.18.0.10', 'answer-test', 'up');
    expect(d.controller.storedVip({ protocol: 'tcp', address: '198.18.0.10', port: 80 })?.healthCheck).toEqual({
      type: 'answer-test',
      via: 'vip',
      answer: 'up',
    });
    await expect(vipAdd('198.18.0.11', 'answer-test', 'no')).rejects.toMatchObject({
      stderr: expect.stringMatching(/^xlb: --hc-answer: one of up or down, not "no"/),
    });
    await expect(vipAdd('198.18.0.11', 'tcp', 'up')).rejects.toMatchObject({
      stderr: expect.stringMatching(/^xlb: --hc-answer: not an option of a tcp check/),
    });
    expect(d.controller.storedVip({ protocol: 'tcp', address: '198.18.0.11', port: 80 })).toBeUndefined();
  });
});
