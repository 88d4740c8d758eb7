/**
 * Probe ports found held by another process on the LB (a probe's bind failed). The
 * allocator gives no check such a port; each is forgotten after a while, so a port the
 * other process let go is used again.
 */

/** How long a port found held stays skipped. */
export const BUSY_PORT_RETRY_MS = 10 * 60_000;

export class BusyPorts {
  /** Port -> when it was last found held (ms). */
  private readonly found = new Map<number, number>();

  constructor(private readonly now: () => number = Date.now) {}

  add(port: number): void {
    this.found.set(port, this.now());
  }

  /** Whether `port` was found held within the last BUSY_PORT_RETRY_MS. */
  has(port: number): boolean {
    const at = this.found.get(port);
    if (at === undefined) return false;
    if (this.now() - at < BUSY_PORT_RETRY_MS) return true;
    this.found.delete(port);
    return false;
  }
}
