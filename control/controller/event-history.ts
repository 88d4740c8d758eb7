/**
 * The daemon's recent events: each numbered (ids rise by one from 1 at each start),
 * logged (the line is the event) and the last `capacity` kept, so a client that
 * reconnects catches up from the last id it saw. Stats ticks are none of these: they
 * are a view of the counters, not events.
 */
import type { Logger } from 'pino';
import { eventText } from './event-text.js';
import type { EventGap, NewEvent, RecordedEvent } from './views.js';

export const EVENT_HISTORY_SIZE = 1000;

export type EventLog = Pick<Logger, 'info'>;

export class EventHistory {
  private readonly kept: RecordedEvent[] = [];
  private lastId = 0;

  constructor(
    private readonly log?: EventLog,
    readonly capacity = EVENT_HISTORY_SIZE,
  ) {}

  record(event: NewEvent, at = new Date()): RecordedEvent {
    const recorded = { ...event, id: ++this.lastId, at: at.toISOString() };
    this.log?.info(recorded, eventText(recorded));
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
