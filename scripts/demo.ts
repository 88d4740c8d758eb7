/**
 * `npm run demo`: builds the netns lab (client, load balancer, three backends),
 * starts `xlb serve` on the LB, configures a VIP through the CLI (which speaks REST),
 * sends real TCP traffic, shows the per-backend split, kills a backend and shows the
 * failover, then removes everything it made (also when interrupted: see withLab).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ApiClient } from '../control/cli/client.js';
import type { VipView } from '../control/controller/views.js';
import { packagePath } from '../control/paths.js';
import { withLab } from './lab/foreground.js';
import { BACKENDS, type ClientSummary, LAB } from './lab/lab.js';

const execFileAsync = promisify(execFile);
const CLI = packagePath('dist/control/cli/main.js');
const FLOWS = 600;

const step = (text: string) => process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);

async function xlb(api: string, ...args: string[]): Promise<string> {
  process.stdout.write(`$ xlb ${args.join(' ')}\n`);
  const { stdout } = await execFileAsync(process.execPath, [CLI, ...args, '--api', api]);
  process.stdout.write(stdout);
  return stdout;
}

/** How many flows were answered, why the first few failed, and the split by backend. */
function report(summary: ClientSummary): void {
  process.stdout.write(`  ${summary.ok} answered, ${summary.failed} failed; split by backend:\n`);
  for (const error of summary.errors) process.stdout.write(`  failed: ${error}\n`);
  split(summary.byBackend, FLOWS);
}

function split(byBackend: Record<string, number>, total: number): void {
  for (const n of BACKENDS) {
    const count = byBackend[`b${n}`] ?? 0;
    const bar = '#'.repeat(Math.round((40 * count) / total));
    process.stdout.write(
      `  b${n} ${LAB.backend4(n).padEnd(12)} ${String(count).padStart(4)} flows ${((100 * count) / total).toFixed(1).padStart(5)}%  ${bar}\n`,
    );
  }
}

async function main(): Promise<void> {
  step('Building the lab: client, load balancer and three backends in network namespaces');
  await withLab('demo', async (lab) => {
    process.stdout.write(`  client ${LAB.client4}, lb ${LAB.lb4}, backends ${BACKENDS.map((n) => LAB.backend4(n)).join(', ')}\n`);
    process.stdout.write(`  backends hold VIP ${LAB.vip4} on lo and run the xlb_decap XDP program\n`);

    step('Starting xlb serve on the load balancer (native XDP on eth0)');
    const daemon = await lab.startDaemon();
    const api = `unix:${daemon.api.endpoint.kind === 'unix' ? daemon.api.endpoint.path : ''}`;
    await xlb(api, 'status');

    step(`Configuring VIP tcp/${LAB.vip4}:${LAB.tcpPort} over REST: ipip, TCP health checks every 500 ms`);
    await xlb(
      api,
      'vip',
      'add',
      'tcp',
      LAB.vip4,
      String(LAB.tcpPort),
      '--forwarding',
      'ipip',
      '--health-check',
      'tcp',
      '--hc-interval',
      '500ms',
      '--hc-timeout',
      '300ms',
      '--hc-rise',
      '1',
      '--hc-fall',
      '2',
    );
    for (const n of BACKENDS) await xlb(api, 'backend', 'add', 'tcp', LAB.vip4, String(LAB.tcpPort), LAB.backend4(n));
    // Every backend checked up, not merely in the ring: a VIP in panic mode rings backends not yet checked.
    await waitFor(daemon.api, (v) => v.backends.every((b) => b.health === 'up' && b.inRing));

    step(`Sending ${FLOWS} TCP connections from the client to the VIP`);
    const first = await lab.client('tcp', LAB.vip4, FLOWS, 16);
    report(first);
    await xlb(api, 'stats');

    step('Killing the service on backend b2');
    const killedAt = Date.now();
    await lab.killServer(2);
    await waitFor(daemon.api, (v) => v.backends.some((b) => b.address === LAB.backend4(2) && !b.inRing));
    process.stdout.write(`  b2 left the ring ${Date.now() - killedAt} ms later (interval 500 ms x fall 2)\n`);
    await xlb(api, 'backend', 'ls', 'tcp', LAB.vip4, String(LAB.tcpPort));

    step(`Sending ${FLOWS} more connections: all go to the healthy backends`);
    const second = await lab.client('tcp', LAB.vip4, FLOWS, 16);
    report(second);

    await daemon.stop();
    step('Cleaning up: namespaces, links, pins and processes');
  });
  process.stdout.write('  done\n');
}

async function waitFor(api: ApiClient, done: (v: VipView) => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  const path = `/v1/vips/tcp/${LAB.vip4}/${LAB.tcpPort}`;
  while (!done((await api.request<VipView>('GET', path)).body)) {
    if (Date.now() > deadline) throw new Error('the VIP did not reach the expected state in 15 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

main().catch((error) => {
  process.stderr.write(`demo failed: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
