/**
 * Health-check metrics, fed by the controller as checks finish and backends change
 * health: each check's duration by result, and the transitions to up and down. Every
 * backend with a probing check has all its series from the first scrape on (zero
 * until something happens); a backend's series go with it.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { checkType } from '../../checks/registry.js';
import type { Controller } from '../../controller/controller.js';
import type { BackendCheck } from '../../controller/targets.js';
import type { XlbEvent } from '../../controller/views.js';
import { BACKEND_LABELS, backendLabels, type Labels } from './labels.js';
import type { Snapshot } from './scrape-metrics.js';

/** From a local check's fraction of a millisecond to a timeout of seconds. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** A metric's series, one per checked backend and value of its own label; those it has are left as they are. */
class BackendSeries {
  private readonly known = new Map<string, Labels>();

  constructor(
    private readonly label: string,
    private readonly values: readonly string[],
    private readonly metric: { zero(labels: Labels): void; remove(labels: Labels): void },
  ) {}

  /** A backend's series for `value`, remembered so that sync() keeps what it holds. */
  labels(backend: Labels, value: string): Labels {
    const labels = { ...backend, [this.label]: value };
    this.known.set(JSON.stringify(labels), labels);
    return labels;
  }

  /** Adds the series of `backends` it lacks (zero) and removes those of any other backend. */
  sync(backends: Labels[]): void {
    const wanted = new Map(
      backends.flatMap((backend) =>
        this.values.map((value) => {
          const labels = { ...backend, [this.label]: value };
          return [JSON.stringify(labels), labels] as const;
        }),
      ),
    );
    for (const [key, labels] of this.known) {
      if (wanted.has(key)) continue;
      this.metric.remove(labels);
      this.known.delete(key);
    }
    for (const [key, labels] of wanted) {
      if (this.known.has(key)) continue;
      this.metric.zero(labels);
      this.known.set(key, labels);
    }
  }
}

/** The backends whose VIP's check type probes, as labels. */
const checkedBackends = (snapshot: Snapshot): Labels[] =>
  snapshot.vips.filter((v) => checkType(v.healthCheck.type).probe).flatMap((v) => v.backends.map((b) => backendLabels(v, b.address)));

/** Registers the health metrics and subscribes them to `controller`; the returned function unsubscribes. */
export function registerHealthMetrics(registry: Registry, controller: Controller, current: () => Snapshot): () => void {
  const durations: BackendSeries = new BackendSeries('result', ['success', 'failure'], {
    zero: (labels) => duration.zero(labels),
    remove: (labels) => duration.remove(labels),
  });
  const duration = new Histogram({
    name: 'xlb_health_check_duration_seconds',
    help: 'How long each health check took, by result',
    labelNames: [...BACKEND_LABELS, 'result'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
    collect: () => durations.sync(checkedBackends(current())),
  });
  const transitionSeries: BackendSeries = new BackendSeries('to', ['up', 'down'], {
    zero: (labels) => transitions.inc(labels, 0),
    remove: (labels) => transitions.remove(labels),
  });
  const transitions = new Counter({
    name: 'xlb_health_transitions_total',
    help: 'Changes of health its checks decided, by the health changed to',
    labelNames: [...BACKEND_LABELS, 'to'],
    registers: [registry],
    collect: () => transitionSeries.sync(checkedBackends(current())),
  });

  const onChecked = (check: BackendCheck) =>
    duration.observe(
      durations.labels(backendLabels(check.vip, check.backend), check.reason === null ? 'success' : 'failure'),
      check.latencyMs / 1000,
    );
  const onEvent = (event: XlbEvent) => {
    if (event.type === 'health') transitions.inc(transitionSeries.labels(backendLabels(event.vip, event.backend), event.to));
  };
  controller.on('checked', onChecked);
  controller.on('event', onEvent);
  return () => {
    controller.off('checked', onChecked);
    controller.off('event', onEvent);
  };
}
