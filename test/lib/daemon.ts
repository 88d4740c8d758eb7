/**
 * An in-process daemon for API tests and the control-plane bench: a real (unattached) data plane, a real
 * controller and health monitor, the fastify app for inject(), and a state file in
 * a temporary directory.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../control/api/app.js';
import { Controller } from '../../control/daemon/controller.js';
import { NeighbourTable } from '../../control/daemon/host.js';
import { TestDataplane } from '../../control/dataplane/test-dataplane.js';
import { HealthMonitor } from '../../control/health/checker.js';
import { readStateFile } from '../../control/state/store.js';
import { FileStateStore } from '../../control/state/stores.js';

export interface TestDaemon {
  app: FastifyInstance;
  controller: Controller;
  dp: TestDataplane;
  statePath: string;
  stateText(): string;
  close(): Promise<void>;
}

export async function startTestDaemon(
  options: { token?: string; maxVips?: number; maxBackends?: number; ringSize?: number; dir?: string; pinDir?: string | undefined } = {},
): Promise<TestDaemon> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'xlb-api-'));
  const statePath = join(dir, 'state.json');
  const limits = { maxVips: options.maxVips ?? 16, maxBackends: options.maxBackends ?? 64 };
  const dp = TestDataplane.open({ ringSize: options.ringSize ?? 251, maxFlows: 1024, pinDir: options.pinDir, ...limits });
  dp.setConfig({ hashSeed: 1, mtu: 1500, gatewayMac: Buffer.alloc(6), sourceV4: Buffer.alloc(4), sourceV6: Buffer.alloc(16), sourceV4FlowBits: 0, sourceV6FlowBits: 0 });
  const controller = new Controller(
    { dp, store: new FileStateStore(statePath), limits, health: new HealthMonitor(), neighbours: new NeighbourTable('lo'), info: { version: 'test', iface: 'lo', xdpMode: 'generic' } },
    { state: readStateFile(statePath), revision: 0n },
  );
  await controller.start();
  const app = await buildApp({ controller, token: options.token });
  return {
    app,
    controller,
    dp,
    statePath,
    stateText: () => {
      try {
        return readFileSync(statePath, 'utf8');
      } catch {
        // Not written yet: no state file is an empty one.
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
