/**
 * The daemon's recent events: each numbered (ids rise by one from 1 at each start)
 * and the last `capacity` kept, so a client that reconnects catches up from the last
 * id it saw. Stats ticks are not kept: they are a view of the counters, not events.
 */
import type { XlbEvent } from './views.js';

export type RecordedEvent = Exclude<XlbEvent, { type: 'stats' }>;
/** An event before the history numbers and times it. */
export type NewEvent = RecordedEvent extends infer E ? (E extends RecordedEvent ? Omit<E, 'id' | 'at'> : never) : never;

/**
 * The first message of a replay when events after `since` are missing from it:
 * 'evicted', older than the oldest kept; 'restarted', `since` is beyond the last id,
 * so it is an earlier daemon's (ids begin again at each start). `next` is the id the
 * replay goes on from.
 */
export interface EventGap {
  type: 'gap';
  since: number;
  next: number;
  reason: 'evicted' | 'restarted';
}

export const EVENT_HISTORY_SIZE = 1000;

export class EventHistory {
  private readonly kept: RecordedEvent[] = [];
  private lastId = 0;

  constructor(readonly capacity = EVENT_HISTORY_SIZE) {}

  record(event: NewEvent, at = new Date()): RecordedEvent {
    const recorded = { ...event, id: ++this.lastId, at: at.toISOString() } as RecordedEvent;
    this.kept.push(recorded);
    if (this.kept.length > this.capacity) this.kept.shift();
    return recorded;
  }

  /** The kept events with an id above `since`, oldest first, led by a gap when some are missing. */
  replay(since: number): (EventGap | RecordedEvent)[] {
    const next = this.kept[0]?.id ?? this.lastId + 1;
    if (since > this.lastId) return [{ type: 'gap', since, next, reason: 'restarted' }, ...this.kept];
    if (next > since + 1) return [{ type: 'gap', since, next, reason: 'evicted' }, ...this.kept];
    return this.kept.slice(since + 1 - next);
  }
}
