/**
 * BGP announcement of VIPs through BIRD 2 (Debian bird2): xlb writes BIRD's whole
 * configuration — a static protocol holding one /32 or /128 per VIP to announce, and
 * a BGP session per peer exporting just those — and applies it with
 * `birdc configure`. BIRD runs as its own process: it is started if its control
 * socket does not answer, and outlives the daemon, so a daemon restart (the data
 * plane keeps forwarding) does not withdraw anything. Every value written into the
 * configuration has been validated as an address or a number.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stderrOf } from '../child-output.js';

const execFileAsync = promisify(execFile);

export interface BgpPeer {
  address: string;
  asn: number;
}

export interface BirdOptions {
  /** Configuration, control socket and pid file live here. */
  dir: string;
  routerId: string;
  asn: number;
  peers: BgpPeer[];
  /** Local address for IPv4 / IPv6 sessions (the interface's). */
  localV4: string | null;
  localV6: string | null;
}

/** birdc's answer when no BIRD is behind the socket: none there, or nobody listening on it. */
const NO_BIRD_ANSWERS = /Unable to connect to server control socket .*: (No such file or directory|Connection refused)/;

/**
 * Runs a birdc command on `socket`: its output, or null when no BIRD answers there.
 * Any other failure (birdc missing, a refused command) rejects naming the command.
 */
async function birdc(socket: string, args: string[]): Promise<string | null> {
  try {
    return (await execFileAsync('birdc', ['-s', socket, ...args])).stdout;
  } catch (error) {
    const stderr = stderrOf(error);
    if (NO_BIRD_ANSWERS.test(stderr)) return null;
    throw new Error(`birdc -s ${socket} ${args.join(' ')}: ${stderr.trim() || String(error)}`, { cause: error });
  }
}

/**
 * Stops the BIRD whose control socket is in `dir` (its sessions close: everything is
 * withdrawn); nothing to do when none answers there. Rejects when birdc itself fails,
 * since a BIRD left running keeps announcing VIPs nothing forwards.
 */
export async function stopBird(dir: string): Promise<void> {
  await birdc(join(dir, 'bird.ctl'), ['down']);
}

export class BirdSpeaker {
  private announced: string[] | null = null;
  private queue: Promise<void> = Promise.resolve();
  readonly socket: string;
  private readonly config: string;

  constructor(private readonly options: BirdOptions) {
    this.socket = join(options.dir, 'bird.ctl');
    this.config = join(options.dir, 'bird.conf');
  }

  /** Writes the configuration with nothing announced and starts BIRD if it is not running. */
  async start(): Promise<void> {
    mkdirSync(this.options.dir, { recursive: true, mode: 0o700 });
    if (await this.running()) return; // adopted: the first announce() reconfigures it
    this.write([]);
    await new Promise<void>((resolve, reject) => {
      // bird daemonises once its socket is ready; the parent's exit code tells.
      const child = spawn('bird', ['-c', this.config, '-s', this.socket, '-P', join(this.options.dir, 'bird.pid')], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bird exited with ${code}: ${stderr.trim()}`))));
    });
    this.announced = [];
  }

  /** Announces exactly these prefixes (address/len), withdrawing the rest. Calls run in order. */
  announce(prefixes: string[]): Promise<void> {
    const wanted = [...prefixes].sort();
    // One failed reconfiguration must not block the ones after it (the caller hears of it).
    this.queue = this.queue
      .catch(() => undefined)
      .then(async () => {
        if (this.announced && JSON.stringify(this.announced) === JSON.stringify(wanted)) return;
        this.write(wanted);
        const stdout = await birdc(this.socket, ['configure']);
        if (stdout === null) throw new Error(`birdc configure: no BIRD answers on ${this.socket}`);
        if (!/Reconfigured|Reconfiguration in progress/.test(stdout)) throw new Error(`birdc configure: ${stdout.trim()}`);
        this.announced = wanted;
      });
    return this.queue;
  }

  private async running(): Promise<boolean> {
    return (await birdc(this.socket, ['show', 'status'])) !== null;
  }

  private write(prefixes: string[]): void {
    const { routerId, asn, peers, localV4, localV6 } = this.options;
    const routes = (family: 4 | 6) =>
      prefixes
        .filter((p) => (family === 6) === p.includes(':'))
        .map((p) => `  route ${p} blackhole;`)
        .join('\n');
    const sessions = peers.map((peer, i) => {
      const v6 = peer.address.includes(':');
      const local = v6 ? localV6 : localV4;
      return [
        `protocol bgp xlb_peer${i} {`,
        `  ${local ? `local ${local} ` : ''}as ${asn};`,
        `  neighbor ${peer.address} as ${peer.asn};`,
        '  connect delay time 1;',
        '  connect retry time 2;',
        `  ${v6 ? 'ipv6' : 'ipv4'} { import none; export where proto = "xlb_vips${v6 ? 6 : 4}"; next hop self; };`,
        '}',
      ].join('\n');
    });
    const text = [
      '# Written by xlb serve --bgp; changes here are overwritten.',
      `router id ${routerId};`,
      'protocol device { }',
      `protocol static xlb_vips4 {\n  ipv4;\n${routes(4)}\n}`,
      `protocol static xlb_vips6 {\n  ipv6;\n${routes(6)}\n}`,
      ...sessions,
      '',
    ].join('\n');
    const tmp = `${this.config}.tmp`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, this.config);
  }
}
