/**
 * A daemon in this process on any data plane (the kernel's or the in-memory model): a
 * real controller and health monitor, the fastify app for inject() (whose answers must
 * fit the OpenAPI document: openapi-contract.ts), and a state file in a temporary
 * directory. Loads nothing kernel-side itself.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../control/api/app.js';
import type { DryRunner } from '../../control/trace/tracer.js';
import { Controller } from '../../control/controller/controller.js';
import type { ControllerOptions } from '../../control/controller/options.js';
import type { DataplanePort } from '../../control/dataplane/port.js';
import { HealthMonitor } from '../../control/health/checker.js';
import { readStateFile } from '../../control/state/state-file.js';
import { FileStateStore } from '../../control/state/file-store.js';
import { holdToDocument } from './openapi-contract.js';

export interface InProcessDaemon<D extends DataplanePort> {
  app: FastifyInstance;
  controller: Controller;
  dp: D;
  statePath: string;
  stateText(): string;
  close(): Promise<void>;
}

export interface InProcessOptions {
  token?: string | undefined;
  /** Keep the state file here (it outlives close()); a fresh temporary directory otherwise. */
  dir?: string | undefined;
  neighbours: ControllerOptions['neighbours'];
  /** The API's limit on changes per client and minute; the app's default otherwise. */
  mutationsPerMinute?: number | undefined;
  /** false: inject() skips the OpenAPI check (a benchmark times the daemon, not the check). */
  holdToDocument?: boolean | undefined;
  /** Where the controller logs its events. */
  log?: ControllerOptions['log'] | undefined;
  /** What /v1/trace runs each frame on; none: trace answers 503. */
  dryRun?: DryRunner | undefined;
  /** New flows per second over all CPUs that count as a flood; the controller's default otherwise. */
  floodThreshold?: number | undefined;
}

/** Starts a controller and app on `dp` (limits from its sizes); close() closes `dp` too. */
export async function startInProcessDaemon<D extends DataplanePort & { maxVips: number; maxBackends: number; close(): void }>(
  dp: D,
  options: InProcessOptions,
): Promise<InProcessDaemon<D>> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'xlb-api-'));
  const statePath = join(dir, 'state.json');
  const limits = { maxVips: dp.maxVips, maxBackends: dp.maxBackends };
  const controller = new Controller(
    {
      dp,
      store: new FileStateStore(statePath),
      limits,
      health: new HealthMonitor(),
      neighbours: options.neighbours,
      info: { version: 'test', iface: 'lo', xdpMode: 'generic' },
      ...(options.log ? { log: options.log } : {}),
      floodThreshold: options.floodThreshold,
    },
    { state: readStateFile(statePath), revision: 0n },
  );
  await controller.start();
  const built = await buildApp({
    controller,
    token: options.token,
    ...(options.mutationsPerMinute ? { mutationsPerMinute: options.mutationsPerMinute } : {}),
    dryRun: options.dryRun,
  });
  const app = options.holdToDocument === false ? built : holdToDocument(built);
  return {
    app,
    controller,
    dp,
    statePath,
    stateText: () => {
      try {
        return readFileSync(statePath, 'utf8');
      } catch {
        return '';
      }
    },
    async close() {
      await app.close();
      controller.stop();
      dp.close();
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
