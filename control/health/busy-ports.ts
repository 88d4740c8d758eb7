/**
 * Probe ports found held by another process on the LB (a probe's bind failed), per
 * family and transport: a TCP port held over IPv4 says nothing of UDP or IPv6. The
 * allocator gives no check of that family and transport such a port. While any is
 * held, a trial bind (bind and close, as the probe binds) every few seconds finds the
 * ones let go and says so (`freed`), so the allocator gives them out again at once.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { PROBE_PORT_MAX, PROBE_PORT_MIN } from '../dataplane/codec.js';

/** Between trial binds of the held ports. */
export const BUSY_PORT_RETRY_MS = 2000;
/** Trial binds per retry (~50 µs each): every held port is tried within ~30 s even when all 16384 are. */
export const BUSY_PORT_RETRY_BATCH = 1024;

export type Transport = 'tcp' | 'udp';

/** The transport a check type's probe uses: tcp and http connect over TCP, udp sends datagrams. */
export const checkTransport = (type: string): Transport => (type === 'udp' ? 'udp' : 'tcp');

/** A probe port as a probe binds it: `address` unset binds every address of the family (IPv6: of IPv6 only). */
export interface ProbeSocket {
  family: 4 | 6;
  transport: Transport;
  port: number;
  address?: string | undefined;
}

/** Whether `socket` binds now (then closed at once): false only when another socket holds it (EADDRINUSE, EACCES). */
export function trialBind({ family, transport, port, address }: ProbeSocket): Promise<boolean> {
  const host = address ?? (family === 4 ? '0.0.0.0' : '::');
  const held = (error: NodeJS.ErrnoException) => error.code === 'EADDRINUSE' || error.code === 'EACCES';
  return new Promise((resolve) => {
    if (transport === 'tcp') {
      // listen() binds with SO_REUSEADDR, as a probe's connect does.
      const server = net.createServer();
      server.once('error', (error) => resolve(!held(error)));
      server.listen({ port, host, exclusive: true, ipv6Only: family === 6 }, () => server.close(() => resolve(true)));
      return;
    }
    const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', reuseAddr: true, ipv6Only: family === 6 });
    socket.once('error', (error) => {
      socket.close();
      resolve(!held(error));
    });
    socket.bind({ port, address: host, exclusive: true }, () => socket.close(() => resolve(true)));
  });
}

/** One number per family, transport and port. */
const keyOf = (family: number, transport: Transport, port: number) =>
  ((family === 4 ? 0 : 2) + (transport === 'tcp' ? 0 : 1)) * 65536 + port;

/** "other processes on the LB hold 3 of the health-check probe ports 61440-65535 (tcp/IPv4 2, udp/IPv6 1)". */
export function heldPortsText(held: readonly Pick<ProbeSocket, 'family' | 'transport'>[]): string {
  const counts = new Map<string, number>();
  for (const { family, transport } of held) {
    const kind = `${transport}/IPv${family}`;
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  const perKind = [...counts].map(([kind, count]) => `${kind} ${count}`).join(', ');
  return `other processes on the LB hold ${held.length} of the health-check probe ports ${PROBE_PORT_MIN}-${PROBE_PORT_MAX} (${perKind})`;
}

export class BusyPorts extends EventEmitter<{ freed: [] }> {
  /** Held ports by family, transport and port, the longest untried first. */
  private readonly found = new Map<number, ProbeSocket>();
  /** Health key -> why its check has no port: every port it could take is held. */
  private waits: ReadonlyMap<string, string> = new Map();
  private timer: NodeJS.Timeout | null = null;
  private retrying = false;

  constructor(private readonly bind: (socket: ProbeSocket) => Promise<boolean> = trialBind) {
    super();
  }

  add(socket: ProbeSocket): void {
    this.found.set(keyOf(socket.family, socket.transport, socket.port), socket);
    this.timer ??= setInterval(() => void this.retry(), BUSY_PORT_RETRY_MS).unref();
  }

  /** Whether `port` was found held for this family and transport, and no trial bind since got it. */
  has(family: number, transport: Transport, port: number): boolean {
    return this.found.has(keyOf(family, transport, port));
  }

  get size(): number {
    return this.found.size;
  }

  /** The checks the allocator left without a port because the rest are held, with the hold reason of each. */
  setWaiting(waits: ReadonlyMap<string, string>): void {
    this.waits = waits;
  }

  /** Why the check `key` waits for a probe port, or null. */
  waiting(key: string): string | null {
    return this.waits.get(key) ?? null;
  }

  /**
   * Trial-binds up to `batch` held ports, the longest untried first; forgets the ones
   * that bind and emits `freed` if any did. Returns how many did.
   */
  async retry(batch = BUSY_PORT_RETRY_BATCH): Promise<number> {
    if (this.retrying) return 0;
    this.retrying = true;
    try {
      const tried = [...this.found.entries()].slice(0, batch);
      const bound = await Promise.all(tried.map(([, socket]) => this.bind(socket)));
      tried.forEach(([key, socket], index) => {
        this.found.delete(key);
        if (!bound[index]) this.found.set(key, socket);
      });
      const freed = bound.filter(Boolean).length;
      if (this.found.size === 0) this.close();
      if (freed > 0) this.emit('freed');
      return freed;
    } finally {
      this.retrying = false;
    }
  }

  /** For /v1/status: how many probe ports other processes hold and how many checks wait for one; none when no port is held. */
  warnings(): string[] {
    if (this.found.size === 0) return [];
    return [
      `${heldPortsText([...this.found.values()])}: via-vip checks do not probe from them, and ${this.waits.size} wait for a free one`,
    ];
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
