/**
 * Control-plane speed, in process against a real (unattached) data plane: REST change
 * to ring live, health failure to ring updated, and applying 1000 VIPs x 100 backends.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vipPath } from '../control/cli/client.js';
import type { StateFile } from '../control/state/schema.js';
import { writeStateFile } from '../control/state/state-file.js';
import { startTestDaemon } from '../test/lib/daemon.js';
import type { Result } from './harness.js';
import { percentile } from './stats.js';

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

async function restToRing(): Promise<Result[]> {
  const d = await startTestDaemon({ ringSize: 65537, holdToDocument: false });
  try {
    const vip = vipPath('tcp', '198.19.0.1', 80);
    await d.app.inject({ method: 'PUT', url: vip, payload: { forwarding: 'ipip' } });
    for (let i = 0; i < 10; i++) await d.app.inject({ method: 'PUT', url: vipPath('tcp', '198.19.0.1', 80, `198.18.1.${i}`) });
    const id = d.controller.storedVip({ protocol: 'tcp', address: '198.19.0.1', port: 80 })!.id;
    const backendId = d.controller.storedVip({ protocol: 'tcp', address: '198.19.0.1', port: 80 })!.backends[0]!.id;
    const answered: number[] = [];
    const liveAfter: number[] = [];
    let stale = 0;
    for (let i = 0; i < 200; i++) {
      const weight = 1 + (i % 2);
      const start = process.hrtime.bigint();
      const res = await d.app.inject({ method: 'PUT', url: vipPath('tcp', '198.19.0.1', 80, '198.18.1.0'), payload: { weight } });
      answered.push(ms(start));
      // Read the ring back at once: if it already holds the new weights, it went live
      // no later than this read finished.
      const readStart = process.hrtime.bigint();
      const ring = d.dp.getRing(id)!;
      const share = ring.filter((b) => b === backendId).length / ring.length;
      liveAfter.push(ms(readStart));
      if (res.statusCode !== 200 || Math.abs(share - weight / (9 + weight)) > 0.01) stale++;
    }
    const p99 = percentile(liveAfter, 99);
    return [
      { name: 'REST change answered, ring already live, p50 (10 backends, M=65537)', value: percentile(answered, 50), unit: 'ms' },
      { name: 'REST change answered, ring already live, p99', value: percentile(answered, 99), unit: 'ms' },
      { name: 'answers whose ring was not live yet', value: stale, unit: 'of 200', target: '0', met: stale === 0 },
      {
        name: 'ring live after the API answers, p99 (bound: the read-back)',
        value: p99,
        unit: 'ms',
        target: '<= 5 ms',
        met: stale === 0 && p99 <= 5,
      },
    ];
  } finally {
    await d.close();
  }
}

async function healthToRing(): Promise<Result[]> {
  const d = await startTestDaemon({ ringSize: 65537, holdToDocument: false });
  const servers = new Set<net.Server>();
  const up = async (host: string, port = 0) => {
    const server = net.createServer((socket) => socket.destroy());
    server.listen(port, host);
    await once(server, 'listening');
    servers.add(server);
    return server;
  };
  const down = (server: net.Server) => {
    servers.delete(server);
    return new Promise((resolve) => server.close(resolve));
  };
  try {
    const port = ((await up('127.0.0.1')).address() as net.AddressInfo).port;
    const intervalMs = 100;
    const key = { protocol: 'tcp' as const, address: '198.19.0.1', port: 80 };
    await d.app.inject({
      method: 'PUT',
      url: vipPath('tcp', key.address, 80),
      payload: { forwarding: 'ipip', healthCheck: { type: 'tcp', via: 'direct', port, intervalMs, timeoutMs: 100, rise: 1, fall: 1 } },
    });
    // The API refuses loopback backends; the controller behind it takes them, so direct checks reach these local listeners.
    for (const b of ['127.0.0.1', '127.0.0.2']) await d.controller.putBackend(key, b, { weight: 1, state: 'active' });
    const inRing = (address: string) => {
      const vip = d.controller.storedVip(key)!;
      return new Set(d.dp.getRing(vip.id) ?? []).has(vip.backends.find((b) => b.address === address)!.id);
    };
    // Health transitions and the 1 s stats tick both arrive as controller events.
    const until = async (done: () => boolean) => {
      while (!done()) await once(d.controller, 'event');
    };
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const server = await up('127.0.0.2', port);
      await until(() => inRing('127.0.0.2'));
      const start = process.hrtime.bigint();
      await down(server);
      await until(() => !inRing('127.0.0.2'));
      times.push(ms(start));
    }
    return [
      { name: `health failure -> ring updated, p50 (interval ${intervalMs} ms, fall 1)`, value: percentile(times, 50), unit: 'ms' },
      { name: 'health failure -> ring updated, p99', value: percentile(times, 99), unit: 'ms' },
    ];
  } finally {
    for (const s of servers) s.close();
    await d.close();
  }
}

async function bigConfig(): Promise<Result[]> {
  const dir = mkdtempSync(join(tmpdir(), 'xlb-bench-state-'));
  const VIPS = 1000;
  const BACKENDS = 100;
  try {
    const state: StateFile = {
      version: 1,
      vips: Array.from({ length: VIPS }, (_, v) => ({
        protocol: 'tcp' as const,
        address: `198.19.${v >> 8}.${v & 255}`,
        port: 80,
        id: v,
        forwarding: 'ipip' as const,
        affinity: 'flow' as const,
        conntrack: true,
        panicThreshold: 0.5,
        healthCheck: { type: 'none' as const },
        backends: Array.from({ length: BACKENDS }, (_, b) => ({
          address: `198.18.${b}.${v & 255}`,
          id: v * BACKENDS + b,
          weight: 1,
          state: 'active' as const,
        })),
      })),
    };
    writeStateFile(join(dir, 'state.json'), state);
    const rssBefore = process.memoryUsage().rss;
    const start = process.hrtime.bigint();
    const d = await startTestDaemon({ dir, ringSize: 65537, maxVips: 1024, maxBackends: VIPS * BACKENDS, holdToDocument: false });
    const applyMs = ms(start);
    const rss = process.memoryUsage().rss;
    try {
      const latencies: number[] = [];
      for (let i = 0; i < 50; i++) {
        const t = process.hrtime.bigint();
        await d.app.inject({ method: 'PUT', url: vipPath('tcp', '198.19.0.7', 80, '198.18.3.7'), payload: { weight: 1 + (i % 2) } });
        latencies.push(ms(t));
      }
      return [
        { name: `apply ${VIPS} VIPs x ${BACKENDS} backends at start (M=65537)`, value: applyMs / 1000, unit: 's' },
        { name: 'daemon RSS with that configuration', value: rss / 2 ** 20, unit: 'MiB' },
        { name: 'RSS growth while applying it', value: (rss - rssBefore) / 2 ** 20, unit: 'MiB' },
        { name: 'REST change with it loaded, p50', value: percentile(latencies, 50), unit: 'ms' },
        { name: 'REST change with it loaded, p99', value: percentile(latencies, 99), unit: 'ms' },
      ];
    } finally {
      await d.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function measureControlPlane(): Promise<Result[]> {
  return [...(await restToRing()), ...(await healthToRing()), ...(await bigConfig())];
}
