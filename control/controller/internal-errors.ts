/**
 * Failures the daemon caught and lived through, by component: counted for
 * xlb_internal_errors_total, the last one of each kept for /v1/status, and each
 * distinct message logged once (a failure that repeats every second logs one line).
 */
import type { Logger } from 'pino';

export const COMPONENTS = ['health', 'store', 'dataplane', 'bgp', 'neighbours', 'host', 'link', 'stats', 'unhandled'] as const;
export type Component = (typeof COMPONENTS)[number];

export interface ComponentErrors {
  component: Component;
  count: number;
  /** The last failure's message and when it happened (ISO 8601). */
  lastMessage: string;
  lastAt: string;
}

/** Distinct messages logged at most, so a message carrying changing numbers cannot grow the set without end. */
const MAX_LOGGED_MESSAGES = 1000;

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export class InternalErrors {
  private readonly byComponent = new Map<Component, ComponentErrors>();
  private readonly logged = new Set<string>();

  constructor(private readonly logger?: Pick<Logger, 'error'>) {}

  record(component: Component, error: unknown, context: Record<string, unknown> = {}): void {
    const message = errorMessage(error);
    const previous = this.byComponent.get(component);
    this.byComponent.set(component, {
      component,
      count: (previous?.count ?? 0) + 1,
      lastMessage: message,
      lastAt: new Date().toISOString(),
    });
    const key = `${component}\0${message}`;
    if (this.logged.has(key) || this.logged.size >= MAX_LOGGED_MESSAGES) return;
    this.logged.add(key);
    this.logger?.error(
      { component, err: error, ...context },
      `${component}: ${message} (caught; the daemon goes on, further occurrences are only counted)`,
    );
  }

  /** Every component that failed at least once. */
  list(): ComponentErrors[] {
    return COMPONENTS.flatMap((c) => this.byComponent.get(c) ?? []);
  }

  /** Runs `work` (sync or async) and records what it throws or rejects with; never throws. */
  guard(component: Component, work: () => unknown, context?: Record<string, unknown>): void {
    try {
      const result = work();
      if (result instanceof Promise) result.catch((error) => this.record(component, error, context));
    } catch (error) {
      this.record(component, error, context);
    }
  }
}
