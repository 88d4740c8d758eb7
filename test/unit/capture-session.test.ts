/**
 * A capture session against a kernel switch the test drives (its perf buffer a queue of
 * raw records, polls by fake timers): it renews the kernel's lease at every poll and
 * never after stop; a client that does not read holds the session's output at its limit,
 * the rest dropped and counted without being decoded; a client that catches up gets
 * packets again.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { readBlocks } from '../../control/capture/pcapng.js';
import { CAPTURE_OUTPUT_LIMIT, CaptureSession, type CaptureSwitch } from '../../control/capture/session.js';
import { decodeCaptureRecord } from '../../control/dataplane/capture-record.js';
import { CAPTURE_NONE, CAPTURE_RECEIVED, CAPTURE_SENT, captureRecordCodec, OUTCOMES } from '../../control/dataplane/codec.js';

// The real decoder, counted: a copy the session cannot send must cost no decoding.
vi.mock('../../control/dataplane/capture-record.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../control/dataplane/capture-record.js')>();
  return { ...actual, decodeCaptureRecord: vi.fn(actual.decodeCaptureRecord) };
});

const POLL_MS = 20;
const FRAME = Buffer.alloc(1400, 0xab);

/** The kernel's side: records queued by the test, renewals and stops counted. */
class TestSwitch implements CaptureSwitch {
  queued: Buffer[] = [];
  renewals = 0;
  on = false;
  private sequence = 0;

  start() {
    this.on = true;
    return {
      consume: () => ({ records: this.queued.splice(0), lost: 0 }),
      close: () => undefined,
    };
  }

  renew(): void {
    if (this.on) this.renewals++;
  }

  stop(): void {
    this.on = false;
  }

  lostCopies(): number {
    return 0;
  }

  /** `count` forwarded packets, each as received and as sent (the kernel's pairs). */
  forward(count: number): void {
    for (let i = 0; i < count; i++) {
      this.sequence++;
      for (const direction of [CAPTURE_RECEIVED, CAPTURE_SENT]) {
        const record = captureRecordCodec.encode({
          time_ns: 1_000_000 + this.sequence,
          sequence: this.sequence,
          cpu: 0,
          vip_id: CAPTURE_NONE,
          backend_id: CAPTURE_NONE,
          length: FRAME.length,
          captured: FRAME.length,
          outcome: OUTCOMES.indexOf('tx_dsr'),
          direction,
        });
        this.queued.push(Buffer.concat([record, FRAME]));
      }
    }
  }
}

const noNames = { vip: () => undefined, backend: () => undefined };
const settings = { vipId: null, backend: null, outcomes: 0xffffffff, snaplen: 65535 };

let kernel: TestSwitch;
let session: CaptureSession;
beforeEach(() => {
  vi.useFakeTimers();
  vi.mocked(decodeCaptureRecord).mockClear();
  kernel = new TestSwitch();
  session = new CaptureSession(kernel, { settings, count: undefined, interfaceName: 'eth0', names: noNames });
});
afterEach(() => {
  session.stop('test over');
  vi.useRealTimers();
});

/** What the client has read of the output so far, as pcapng packet blocks. */
function readPackets(): number {
  const chunks: Buffer[] = [];
  for (let chunk: Buffer | null; (chunk = session.output.read() as Buffer | null);) chunks.push(chunk);
  return readBlocks(Buffer.concat(chunks)).blocks.filter((b) => b.type === 'packet').length;
}

describe('a capture session', () => {
  test("renews the kernel's lease at every poll, and never after it stopped", () => {
    vi.advanceTimersByTime(5 * POLL_MS);
    expect(kernel.renewals).toBe(5);
    session.stop('stopped');
    expect(kernel.on).toBe(false);
    vi.advanceTimersByTime(5 * POLL_MS);
    expect(kernel.renewals).toBe(5);
  });

  test('a client that does not read: the output holds the limit at most; the rest is dropped, counted and not decoded', () => {
    // 30 polls of 100 packets, received and sent: some 9 MB offered to a client that reads nothing.
    for (let poll = 0; poll < 30; poll++) {
      kernel.forward(100);
      vi.advanceTimersByTime(POLL_MS);
      // A received copy is taken below the limit, then its sent copy follows it.
      expect(session.held).toBeLessThan(CAPTURE_OUTPUT_LIMIT + 2 * (FRAME.length + 200));
    }
    const summary = session.stop('stopped');
    expect(summary.droppedByDaemon).toBeGreaterThan(0);
    expect(summary.packets + summary.droppedByDaemon).toBe(3000);
    expect(vi.mocked(decodeCaptureRecord)).toHaveBeenCalledTimes(2 * summary.packets);
  });

  test('a client that catches up gets packets again', () => {
    for (let poll = 0; poll < 30; poll++) {
      kernel.forward(100);
      vi.advanceTimersByTime(POLL_MS);
    }
    const written = readPackets();
    expect(session.held).toBe(0);
    kernel.forward(10);
    vi.advanceTimersByTime(POLL_MS);
    expect(readPackets()).toBe(20);
    const summary = session.stop('stopped');
    expect(summary.droppedByDaemon).toBeGreaterThan(0);
    expect(summary.packets).toBe(written / 2 + 10);
  });
});
