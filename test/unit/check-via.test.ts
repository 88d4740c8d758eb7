/**
 * healthCheck.via: a VIP put through the API checks through the VIP, a state from
 * before `via` existed keeps checking directly, and each via-vip check's probe port
 * and probe entries.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { probed, SWITCH_CHECK } from './lib/switch-check.js';
import { type CheckSpec, ProbePortBusy, ProbeUnsent, socketErrorReason } from '../../control/checks/check-type.js';
import { probe } from '../../control/health/checker.js';
import { checkFromFlags } from '../../control/cli/check-flags.js';
import { checkTargets, viaVipHolds } from '../../control/controller/targets.js';
import { planVip } from '../../control/reconciler/plan.js';
import { FORWARD_IPIP, IPPROTO_TCP, IPPROTO_UDP, PROBE_PORT_MAX, PROBE_PORT_MIN } from '../../control/dataplane/codec.js';
import type { ProbeEntry } from '../../control/dataplane/probes.js';
import type { XlbEvent } from '../../control/controller/views.js';
import { formatAddress } from '../../control/net/address.js';
import { readStateFile } from '../../control/state/state-file.js';
import type { StateFile, VipKey } from '../../control/state/schema.js';
import { type ModelDaemon, startModelDaemon } from '../lib/model-daemon.js';

const KEY: VipKey = { protocol: 'tcp', address: '198.19.0.1', port: 80 };
const VIP = '/v1/vips/tcp/198.19.0.1/80';
const CHECK = { type: SWITCH_CHECK, intervalMs: 60_000 };

let d: ModelDaemon | undefined;
let dir: string | undefined;
afterEach(async () => {
  await d?.close();
  d = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

const put = (url: string, payload: object = {}) => d!.app.inject({ method: 'PUT', url, payload });

/** The probe entries as `destination local-port -> backend id`, TCP and UDP separately. */
const probeTable = (entries: ProbeEntry[]) =>
  entries
    .map(
      (e) => `${e.proto === IPPROTO_TCP ? 'tcp' : 'udp'} ${formatAddress(e.family, e.address)}:${e.port} ${e.localPort} -> ${e.backendId}`,
    )
    .sort();

describe('the default path', () => {
  test('a state file written before via existed loads its checks as direct', async () => {
    dir = mkdtempSync(join(tmpdir(), 'xlb-via-'));
    const vip = { ...KEY, forwarding: 'dsr', affinity: 'flow', conntrack: true, panicThreshold: 0.5, healthCheck: CHECK, id: 0 };
    const backends = [{ address: '198.18.0.11', weight: 1, state: 'active', id: 0 }];
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ version: 1, vips: [{ ...vip, backends }] }));
    expect(readStateFile(join(dir, 'state.json')).vips[0]!.healthCheck).toEqual({ ...CHECK, via: 'direct' });

    d = await startModelDaemon({ dir });
    expect(d.controller.vip(KEY).backends[0]!.via).toBe('direct');
    expect(d.dp.listProbes()).toEqual([]);
  });

  test('a VIP put through the API checks via vip, or direct when asked; a check that does not probe has no path', async () => {
    d = await startModelDaemon();
    expect((await put(VIP, { forwarding: 'ipip', healthCheck: CHECK })).statusCode).toBe(201);
    expect((await put(`${VIP}/backends/198.18.0.11`)).statusCode).toBe(201);
    expect(d.controller.storedVip(KEY)!.healthCheck).toEqual({ ...CHECK, via: 'vip' });
    expect(JSON.parse(d.stateText()).vips[0].healthCheck.via).toBe('vip');
    expect(d.controller.vip(KEY).backends[0]!.via).toBe('vip');

    expect((await put(VIP, { forwarding: 'ipip', healthCheck: { ...CHECK, via: 'direct' } })).statusCode).toBe(200);
    expect(d.controller.vip(KEY).backends[0]!.via).toBe('direct');
    expect(d.dp.listProbes()).toEqual([]);

    expect((await put(VIP, { forwarding: 'ipip' })).statusCode).toBe(200);
    expect(d.controller.storedVip(KEY)!.healthCheck).toEqual({ type: 'none' });
    expect(d.controller.vip(KEY).backends[0]!.via).toBe('none');
  });

  test('a bad via is refused naming the field, and changes nothing', async () => {
    d = await startModelDaemon();
    const refused = await put(VIP, { forwarding: 'dsr', healthCheck: { ...CHECK, via: 'sideways' } });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.details[0].path).toBe('body.healthCheck.via');
    expect(d.controller.storedVip(KEY)).toBeUndefined();
  });

  test('--hc-via takes vip or direct, refusing anything else naming the flag', () => {
    expect(checkFromFlags({ healthCheck: 'tcp', hcVia: 'direct' })).toEqual({ type: 'tcp', via: 'direct' });
    expect(() => checkFromFlags({ healthCheck: 'tcp', hcVia: 'lb' })).toThrow('--hc-via: one of vip or direct, not "lb"');
  });
});

describe('probe ports and entries', () => {
  test('each backend of a destination holds its own port while it stays; a new one takes the lowest free; entries follow', async () => {
    d = await startModelDaemon();
    expect((await put(VIP, { forwarding: 'ipip', healthCheck: CHECK })).statusCode).toBe(201);
    for (const backend of ['198.18.0.11', '198.18.0.12', '198.18.0.13'])
      expect((await put(`${VIP}/backends/${backend}`)).statusCode).toBe(201);
    const ids = () => new Map(d!.controller.storedVip(KEY)!.backends.map((b) => [b.address, b.id]));
    const [a, b, c] = [...ids().values()] as [number, number, number];
    const entries = (port: number, id: number) => [`tcp 198.19.0.1:80 ${port} -> ${id}`, `udp 198.19.0.1:80 ${port} -> ${id}`];
    expect(probeTable(d.dp.listProbes())).toEqual([...entries(61440, a), ...entries(61441, b), ...entries(61442, c)].sort());
    expect(d.dp.listProbes().every((e) => e.forwarding === FORWARD_IPIP)).toBe(true);

    expect((await d.app.inject({ method: 'DELETE', url: `${VIP}/backends/198.18.0.11` })).statusCode).toBe(204);
    expect(probeTable(d.dp.listProbes())).toEqual([...entries(61441, b), ...entries(61442, c)].sort());
    expect((await put(`${VIP}/backends/198.18.0.14`)).statusCode).toBe(201);
    const e = ids().get('198.18.0.14')!;
    expect(probeTable(d.dp.listProbes())).toEqual([...entries(61440, e), ...entries(61441, b), ...entries(61442, c)].sort());

    // Another destination counts its ports from the start of the range.
    expect((await put('/v1/vips/tcp/198.19.0.1/443', { forwarding: 'ipip', healthCheck: CHECK })).statusCode).toBe(201);
    expect((await put('/v1/vips/tcp/198.19.0.1/443/backends/198.18.0.11')).statusCode).toBe(201);
    const other = d.controller.storedVip({ ...KEY, port: 443 })!.backends[0]!.id;
    expect(probeTable(d.dp.listProbes().filter((p) => p.port === 443))).toEqual([
      `tcp 198.19.0.1:443 61440 -> ${other}`,
      `udp 198.19.0.1:443 61440 -> ${other}`,
    ]);
    expect(d.dp.listProbes().filter((p) => p.proto === IPPROTO_UDP)).toHaveLength(4);
  });

  test('a destination with more checks than probe ports: the rest fail saying so', async () => {
    const ports = PROBE_PORT_MAX - PROBE_PORT_MIN + 1;
    const backends = Array.from({ length: ports + 1 }, (_, i) => ({
      address: `198.18.${i >> 8}.${i & 255}`,
      weight: 1,
      state: 'active' as const,
      id: i,
    }));
    const vip = { ...KEY, forwarding: 'dsr', affinity: 'flow' as const, conntrack: true, panicThreshold: 0.5, id: 0, backends };
    const state: StateFile = { version: 1, vips: [{ ...vip, healthCheck: { ...CHECK, via: 'vip' } }] };
    const { specs, probes } = checkTargets(state);
    const last = specs.get(`0:${ports}`)!;
    expect(last.localPort).toBeUndefined();
    expect(specs.get(`0:${ports - 1}`)!.localPort).toBe(PROBE_PORT_MAX);
    expect(probes).toHaveLength(2 * ports);
    expect(await probe(last)).toBe(`more checks to 198.19.0.1 port 80 than probe ports (61440-65535) through dsr to ${last.backend}`);
  });
});

describe('a probe waits for its path', () => {
  // The probe program sends a dsr probe by the backend's MAC: sent before the record has
  // one, it is dropped, and the backend's first check would fail for nothing.
  test('a dsr backend whose MAC is unresolved is not probed and counts no failure; once resolved its first probe decides', async () => {
    d = await startModelDaemon();
    probed.length = 0;
    expect((await put(VIP, { forwarding: 'dsr', healthCheck: CHECK })).statusCode).toBe(201);
    expect((await put(`${VIP}/backends/198.18.0.11`)).statusCode).toBe(201);
    expect(d.controller.vip(KEY).backends[0]).toMatchObject({
      health: 'unknown',
      healthReason: 'waiting to probe through the VIP: MAC address not resolved',
      lastCheckAt: null,
    });
    expect(probed).toEqual([]);

    const up = new Promise<XlbEvent>((resolve) =>
      d!.controller.on('event', (e: XlbEvent) => {
        if (e.type === 'health' && e.backend === '198.18.0.11') resolve(e);
      }),
    );
    d.neighbours.macs.set('198.18.0.11', Buffer.from('02aabbccdd11', 'hex'));
    // A new backend makes the daemon read its neighbours at once.
    expect((await put(`${VIP}/backends/198.18.0.12`)).statusCode).toBe(201);
    expect(await up).toMatchObject({ from: 'unknown', to: 'up', via: 'vip' });
    expect(probed).toEqual(['198.18.0.11']);
    expect(d.controller.vip(KEY).backends.find((b) => b.address === '198.18.0.12')).toMatchObject({ health: 'unknown' });
  });
});

test('a VIP that is an address of the LB itself is never probed through: the probe would be answered locally', () => {
  const vip = {
    ...KEY,
    forwarding: 'ipip' as const,
    affinity: 'flow' as const,
    conntrack: true,
    panicThreshold: 0.5,
    id: 0,
    healthCheck: { ...CHECK, via: 'vip' as const },
    backends: [{ address: '198.18.0.11', weight: 1, state: 'active' as const, id: 0 }],
  };
  const plans = new Map([[0, planVip(vip, { health: () => 'up', mac: () => null })]]);
  const spec = checkTargets({ version: 1, vips: [vip] }).specs.get('0:0')!;
  const host = { own: new Map<string, string>(), prefixEnds: new Map() };
  const holds = viaVipHolds(
    () => plans,
    () => host,
  );
  expect(holds('0:0', spec)).toBeNull();
  host.own.set('198.19.0.1', 'lo');
  expect(holds('0:0', spec)).toBe('cannot probe through the VIP: 198.19.0.1 is an address of this host (lo), so the probe never leaves it');
  expect(holds('0:0', { ...spec, via: 'direct' })).toBeNull();
});

describe('socket errors of a via-vip probe', () => {
  const viaVip = { via: 'vip', address: '198.19.0.1', localPort: 61440, localAddress: '198.18.0.2' } as CheckSpec;
  const error = (syscall: string, code: string) => Object.assign(new Error(code), { syscall, code }) as NodeJS.ErrnoException;

  test('each names the LB-side cause: no route, a time exceeded from a forwarding backend, a taken port, a lost source', () => {
    expect(socketErrorReason(viaVip, 'tcp connect', error('connect', 'ENETUNREACH'))).toBe(
      'no route from the LB to 198.19.0.1: via vip needs one out of the XDP interface',
    );
    expect(socketErrorReason(viaVip, 'tcp connect', error('connect', 'EHOSTUNREACH'))).toBe(
      "host unreachable, or the probe's hop limit ran out at a backend that forwards packets to 198.19.0.1 instead of taking them (is the VIP on its lo?)",
    );
    expect(socketErrorReason(viaVip, 'tcp connect', error('connect', 'EADDRNOTAVAIL'))).toBeInstanceOf(ProbePortBusy);
    const unsent = socketErrorReason(viaVip, 'tcp connect', error('bind', 'EADDRNOTAVAIL'));
    expect(unsent).toBeInstanceOf(ProbeUnsent);
    expect(unsent).not.toBeInstanceOf(ProbePortBusy);
    expect(socketErrorReason({ ...viaVip, via: 'direct' }, 'tcp connect', error('connect', 'EHOSTUNREACH'))).toBe(
      'tcp connect: EHOSTUNREACH',
    );
  });
});
