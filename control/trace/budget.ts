/**
 * The packets each client may trace a minute. Every traced packet is a run of the
 * balancer's code on the daemon's CPU, so a trace is counted by its packets, not its
 * requests: a fixed minute per client, begun by its first traced packet (as the API's
 * rate limit keeps the changes).
 */

/** Traced packets per client and minute: ten full POST /v1/trace requests. */
export const TRACED_PACKETS_PER_MINUTE = 10_000;
const WINDOW_MS = 60_000;
/** Clients remembered before those whose minute is over are forgotten. */
const SWEEP_AT = 1024;

/** A refusal: the limit, and the seconds until the client's minute is over. */
export interface TraceRefusal {
  perMinute: number;
  traced: number;
  retryAfterSeconds: number;
}

export class TraceBudget {
  private readonly minutes = new Map<string, { start: number; traced: number }>();

  constructor(
    readonly perMinute = TRACED_PACKETS_PER_MINUTE,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts `packets` against the client's minute; over the limit, counts none and says why. */
  take(client: string, packets: number): TraceRefusal | null {
    const now = this.now();
    if (this.minutes.size >= SWEEP_AT) {
      for (const [key, minute] of this.minutes) if (now - minute.start >= WINDOW_MS) this.minutes.delete(key);
    }
    let minute = this.minutes.get(client);
    if (!minute || now - minute.start >= WINDOW_MS) {
      minute = { start: now, traced: 0 };
      this.minutes.set(client, minute);
    }
    if (minute.traced + packets > this.perMinute) {
      return {
        perMinute: this.perMinute,
        traced: minute.traced,
        retryAfterSeconds: Math.max(1, Math.ceil((minute.start + WINDOW_MS - now) / 1000)),
      };
    }
    minute.traced += packets;
    return null;
  }
}
