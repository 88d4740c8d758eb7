/** A one-member etcd in a namespace, for the lab and the tests that keep state in etcd. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * Starts etcd in `ns` serving `client` (http://ADDRESS:PORT), its data in `dataDir`;
 * resolves once `etcdctl endpoint health` says so. A member that exits or stays
 * unhealthy for 20 s is killed and the promise rejects.
 */
export async function startEtcd(ns: string, name: string, dataDir: string, client: string): Promise<ChildProcess> {
  const peer = 'http://127.0.0.1:2380';
  const etcd = spawn(
    'ip',
    [
      ...['netns', 'exec', ns, 'etcd', '--name', name, '--data-dir', dataDir],
      ...['--listen-client-urls', client, '--advertise-client-urls', client],
      ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `${name}=${peer}`],
      ...['--log-level', 'error'],
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const deadline = Date.now() + 20_000;
  for (;;) {
    const healthy = await execFileAsync('ip', ['netns', 'exec', ns, 'etcdctl', '--endpoints', client, 'endpoint', 'health']).then(
      () => true,
      () => false,
    );
    if (healthy) return etcd;
    if (etcd.exitCode !== null || Date.now() > deadline) {
      etcd.kill('SIGKILL');
      throw new Error(`etcd in ${ns} did not become healthy`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
