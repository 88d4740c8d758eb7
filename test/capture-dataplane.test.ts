/**
 * The balancer's capture through BPF_PROG_TEST_RUN: off, it copies nothing; on, a
 * matching packet comes as received (before the rewrite) and as sent, with its outcome,
 * VIP and backend; the kernel filter keeps other VIPs, backends and outcomes out.
 */
import type { PerfReader } from '@xlb/native';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { ALL_OUTCOMES } from '../control/capture/filter.js';
import { readBlocks } from '../control/capture/pcapng.js';
import { CAPTURE_OUTPUT_LIMIT, CaptureSession } from '../control/capture/session.js';
import { CAPTURE_LEASE_NS, type CaptureTap } from '../control/dataplane/capture.js';
import { type CaptureRecord, type CaptureSettings, decodeCaptureRecord } from '../control/dataplane/capture-record.js';
import { CAPTURE_RECEIVED, CAPTURE_SENT, OUTCOMES } from '../control/dataplane/codec.js';
import { parseAddress } from '../control/net/address.js';
import { BalancerFixture, IP } from './lib/fixture.js';
import { backends4, tcp4 } from './lib/frames.js';

let f: BalancerFixture;
let tap: CaptureTap;
let reader: PerfReader | undefined;
afterEach(() => {
  reader?.close();
  reader = undefined;
  f?.close();
});

const everything: CaptureSettings = { vipId: null, backend: null, outcomes: ALL_OUTCOMES, snaplen: 65535 };
const bit = (name: (typeof OUTCOMES)[number]) => 1 << OUTCOMES.indexOf(name);

function records(): CaptureRecord[] {
  return reader!.consume().records.map(decodeCaptureRecord);
}

describe('capture in the balancer', () => {
  beforeEach(() => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    f.addVip({ id: 2, address: IP.vip4, port: 443, forwarding: 'dsr', backends: backends4(2) });
    tap = f.dp.captureTap();
  });

  test('off by default: the settings read off and nothing is copied', () => {
    expect(tap.read().on).toBe(false);
    reader = tap.start(everything);
    tap.stop();
    f.run(tcp4());
    expect(records()).toEqual([]);
  });

  test('a forwarded packet comes as received and as sent, paired, with outcome, VIP and backend', () => {
    reader = tap.start(everything);
    expect(tap.read()).toMatchObject({ on: true, vipId: null, outcomes: ALL_OUTCOMES, snaplen: 65535 });
    const frame = tcp4({ payload: Buffer.from('hello') });
    const { data: sent } = f.run(frame);
    const [received, out, ...more] = records();
    expect(more).toEqual([]);
    expect(received).toMatchObject({ direction: CAPTURE_RECEIVED, outcome: OUTCOMES.indexOf('tx_dsr'), vip_id: 1, length: frame.length });
    expect(received!.frame).toEqual(frame);
    expect(out).toMatchObject({
      direction: CAPTURE_SENT,
      sequence: received!.sequence,
      cpu: received!.cpu,
      backend_id: received!.backend_id,
    });
    expect(out!.frame).toEqual(sent);
    expect([11, 12, 13]).toContain(received!.backend_id);
    expect(out!.timeNs).toBe(received!.timeNs);
  });

  test('the lease: set a lease ahead at most; past it nothing is copied and the first packet clears it', () => {
    reader = tap.start(everything);
    const now = process.hrtime.bigint(); // the kernel's clock (CLOCK_MONOTONIC)
    const until = BigInt(tap.read().untilNs);
    expect(until).toBeGreaterThan(now);
    expect(until).toBeLessThanOrEqual(now + CAPTURE_LEASE_NS);
    reader.close();

    const brief = f.dp.captureTap(1_000_000n);
    reader = brief.start(everything);
    const briefUntil = BigInt(brief.read().untilNs);
    while (process.hrtime.bigint() <= briefUntil); // a millisecond
    f.run(tcp4());
    f.run(tcp4({ dst: '198.18.5.5' }));
    expect(records()).toEqual([]);
    expect(brief.read()).toMatchObject({ on: false, untilNs: 0 });
  });

  test('renew() moves the lease on, with the settings as started', () => {
    reader = tap.start({ ...everything, vipId: 2 });
    const first = tap.read().untilNs;
    const later = process.hrtime.bigint() + 1_000_000n;
    while (process.hrtime.bigint() <= later); // a millisecond
    tap.renew();
    expect(tap.read().untilNs).toBeGreaterThan(first);
    expect(tap.read()).toMatchObject({ vipId: 2, snaplen: 65535 });
    tap.stop();
    tap.renew();
    expect(tap.read().on).toBe(false);
  });

  test('a passed packet comes as received only, with no VIP', () => {
    reader = tap.start(everything);
    f.run(tcp4({ dst: '198.18.5.5' }));
    const got = records();
    expect(got.map((r) => [r.direction, OUTCOMES[r.outcome], r.vip_id])).toEqual([[CAPTURE_RECEIVED, 'pass_not_vip', 0xffffffff]]);
  });

  test("snaplen cuts both copies; the length stays the frame's", () => {
    reader = tap.start({ ...everything, snaplen: 20 });
    const frame = tcp4({ payload: Buffer.alloc(100) });
    f.run(frame);
    const got = records();
    expect(got.map((r) => [r.frame.length, r.length])).toEqual([
      [20, frame.length],
      [20, frame.length],
    ]);
  });

  test('the kernel filter: only the VIP, outcomes and backend asked for', () => {
    reader = tap.start({ ...everything, vipId: 2 });
    f.run(tcp4({ dport: 80 }));
    f.run(tcp4({ dport: 443 }));
    f.run(tcp4({ dst: '198.18.5.5' }));
    expect(new Set(records().map((r) => r.vip_id))).toEqual(new Set([2]));

    reader.close();
    reader = tap.start({ ...everything, outcomes: bit('pass_not_vip') });
    f.run(tcp4());
    f.run(tcp4({ dst: '198.18.5.5' }));
    expect(records().map((r) => OUTCOMES[r.outcome])).toEqual(['pass_not_vip']);

    reader.close();
    // The first backend of VIP 1 by address (198.18.1.1), in any VIP: flows until one lands there.
    reader = tap.start({ ...everything, backend: { family: 4, address: parseAddress(IP.backend4(1)).bytes } });
    for (let port = 40000; port < 40064; port++) {
      f.run(tcp4({ sport: port }));
      f.run(tcp4({ sport: port, dport: 443 }));
    }
    const got = records();
    expect(got.length).toBeGreaterThan(0);
    expect(new Set(got.map((r) => r.backend_id))).toEqual(new Set([11, 21]));
  });

  test('a full kernel buffer loses copies, and says how many: in the scratch at once, to the reader with its next record', () => {
    reader = tap.start(everything);
    const repeat = 3000;
    f.dp.program.testRun({ data: tcp4({ payload: Buffer.alloc(1400) }), repeat });
    const first = reader.consume();
    const lost = tap.lostCopies();
    expect(lost).toBeGreaterThan(0);
    expect(first.records.length + lost).toBe(2 * repeat);
    f.run(tcp4());
    const next = reader.consume();
    expect(first.lost + next.lost).toBe(lost);
  });
});

describe('a capture session on the real tap', () => {
  const noNames = { vip: () => undefined, backend: () => undefined };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

  beforeEach(() => {
    f = new BalancerFixture();
    f.addVip({ id: 1, address: IP.vip4, port: 80, forwarding: 'dsr', backends: backends4(1) });
    tap = f.dp.captureTap();
  });

  test('stops itself at the count, switches the kernel off and ends with statistics', async () => {
    const session = new CaptureSession(tap, { settings: everything, count: 3, interfaceName: 'eth0', names: noNames });
    const chunks: Buffer[] = [];
    session.output.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise((resolve) => session.output.once('end', resolve));
    for (let port = 40000; !session.summary && port < 40100; port++) {
      f.run(tcp4({ sport: port }));
      await settle();
    }
    expect(session.summary).toEqual({ packets: 3, lostInKernel: 0, droppedByDaemon: 0, reason: 'count reached' });
    await ended;
    expect(tap.read().on).toBe(false);
    const blocks = readBlocks(Buffer.concat(chunks)).blocks;
    const comments = blocks.flatMap((b) => (b.type === 'packet' ? [b.comment!.split(' ').slice(0, 2).join(' ')] : []));
    expect(comments).toEqual(['received tx_dsr', 'sent tx_dsr', 'received tx_dsr', 'sent tx_dsr', 'received tx_dsr', 'sent tx_dsr']);
    expect(blocks.at(-1)).toEqual({ type: 'statistics', received: 3n, lostInKernel: 0n, droppedByDaemon: 0n });
  });

  test('a client that does not read costs packets (counted), not memory', async () => {
    const session = new CaptureSession(tap, { settings: everything, count: undefined, interfaceName: 'eth0', names: noNames });
    const frame = tcp4({ payload: Buffer.alloc(1400) });
    // 40 rounds of 100 packets, each copied twice: ~12 MB offered to an output nobody reads.
    for (let round = 0; round < 40; round++) {
      f.dp.program.testRun({ data: frame, repeat: 100 });
      await settle();
    }
    const held = session.held;
    const summary = session.stop('test');
    expect(summary.droppedByDaemon).toBeGreaterThan(0);
    expect(held).toBeLessThanOrEqual(CAPTURE_OUTPUT_LIMIT + 2 * 1600);
    expect(tap.read().on).toBe(false);
  });
});
