/**
 * An in-process daemon for API tests and the control-plane bench on a real (unattached)
 * data plane and the host's neighbour table (see in-process-daemon.ts).
 */
import { NeighbourTable } from '../../control/daemon/host.js';
import { TestDataplane, testConfig } from '../../control/dataplane/test-dataplane.js';
import { type InProcessDaemon, startInProcessDaemon } from './in-process-daemon.js';

export type TestDaemon = InProcessDaemon<TestDataplane>;

export async function startTestDaemon(
  options: {
    token?: string;
    maxVips?: number;
    maxBackends?: number;
    ringSize?: number;
    dir?: string;
    pinDir?: string | undefined;
    holdToDocument?: boolean;
  } = {},
): Promise<TestDaemon> {
  const dp = TestDataplane.open({
    ringSize: options.ringSize ?? 251,
    maxFlows: 1024,
    pinDir: options.pinDir,
    maxVips: options.maxVips ?? 16,
    maxBackends: options.maxBackends ?? 64,
  });
  dp.setConfig(testConfig());
  return startInProcessDaemon(dp, {
    token: options.token,
    dir: options.dir,
    neighbours: new NeighbourTable('lo'),
    holdToDocument: options.holdToDocument,
  });
}
