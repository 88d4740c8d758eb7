/**
 * The netns lab: a client, a load balancer and three backends (or as many as asked) on one bridge.
 *
 *   client 198.18.0.10 / 2001:db8::10 ─┐
 *   lb     198.18.0.2  / 2001:db8::2  ─┼─ br0 (switch namespace)
 *   bN     198.18.0.1N / 2001:db8::1N ─┘
 *
 * The client routes the VIP prefixes (198.19.0.0/24, 2001:db8:f::/64) via the LB,
 * the LB routes them via the client (for health checks through the VIP); backends hold the VIPs on lo, run the decap program on eth0 and answer the client
 * directly. Every namespace, link and process is removed by destroy().
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { BpfObject } from '@xlb/native';
import { attachProgram, detachProgram } from '../../control/dataplane/attach.js';
import { ApiClient } from '../../control/cli/client.js';
import { Decapsulator } from '../../control/dataplane/decapsulator.js';
import { packagePath } from '../../control/paths.js';
import { startEtcd } from './etcd.js';
import { inNamespace, Namespaces, nsRun } from './netns.js';

const execFileAsync = promisify(execFile);

export const LAB = {
  subnet4: 24,
  subnet6: 64,
  lb4: '198.18.0.2',
  lb6: '2001:db8::2',
  /** The second load balancer of a two-LB lab. */
  lb2v4: '198.18.0.3',
  lb2v6: '2001:db8::3',
  etcd4: '198.18.0.250',
  router4: '198.18.0.254',
  router6: '2001:db8::fe',
  routerAsn: 65000,
  lbAsn: 65001,
  client4: '198.18.0.10',
  client6: '2001:db8::10',
  backend4: (n: number) => `198.18.0.1${n}`,
  backend6: (n: number) => `2001:db8::1${n}`,
  vipPrefix4: '198.19.0.0/24',
  vipPrefix6: '2001:db8:f::/64',
  vip4: '198.19.0.1',
  vip6: '2001:db8:f::1',
  /** Every VIP the backends hold on lo (the first of each family is vip4 / vip6). */
  vips4: ['198.19.0.1', '198.19.0.2', '198.19.0.3', '198.19.0.4', '198.19.0.5'] as const,
  vips6: ['2001:db8:f::1', '2001:db8:f::2'] as const,
  tcpPort: 80,
  udpPort: 53,
};

export const BACKENDS = [1, 2, 3] as const;

const SERVER = packagePath('scripts/lab/server.mjs');
const CLIENT = packagePath('scripts/lab/client.mjs');
const LAB_PASS_OBJECT = packagePath('bpf/build/lab_pass.bpf.o');
const CLI = packagePath('dist/control/cli/main.js');

export interface ClientSummary {
  ok: number;
  failed: number;
  byBackend: Record<string, number>;
  /** When each failed flow began, or broke if it had connected (ms since the epoch). */
  failedAt: number[];
  errors: string[];
}

export interface HoldSummary extends ClientSummary {
  broken: number;
  brokenByBackend: Record<string, number>;
}

export class Lab {
  readonly namespaces: Namespaces;
  readonly ns: { sw: string; client: string; lb: string; lb2: string; backends: string[]; router: string; etcd: string };
  readonly backendMacs: string[] = [];
  /** The backends' numbers, 1 to the count asked for (BACKENDS by default). */
  readonly backends: readonly number[];
  private readonly servers = new Map<number, ChildProcess>();
  /** Each backend server's output lines, for its confirmations. */
  private readonly serverLines = new Map<number, ReturnType<typeof createInterface>>();
  private readonly daemons: DaemonProcess[] = [];
  /** Traffic clients still running (client(), hold()). */
  private readonly clients = new Set<ChildProcess>();
  /** Scratch directory (state file, API socket) and pin directory of this lab's daemons. */
  readonly workDir: string;
  readonly bpffs: string;
  private readonly decaps: Decapsulator[] = [];
  private passObject: BpfObject | undefined;
  private routerPidFile?: string;
  private etcd?: ChildProcess;

  private constructor(namespaces: Namespaces, backends: number) {
    this.namespaces = namespaces;
    this.backends = Array.from({ length: backends }, (_, i) => i + 1);
    this.workDir = mkdtempSync(join(tmpdir(), `${namespaces.prefix}-`));
    this.bpffs = `/sys/fs/bpf/${namespaces.prefix}`;
    this.ns = {
      sw: namespaces.name('sw'),
      client: namespaces.name('client'),
      lb: namespaces.name('lb'),
      backends: this.backends.map((n) => namespaces.name(`b${n}`)),
      router: namespaces.name('router'),
      lb2: namespaces.name('lb2'),
      etcd: namespaces.name('etcd'),
    };
  }

  /**
   * Builds the lab, starts a decap program and a server on every backend. Options:
   * `secondLb`, another LB namespace (198.18.0.3); `router`, a router namespace
   * (198.18.0.254, AS 65000) whose BIRD peers with the LBs (AS 65001), installs what
   * it learns multipath (L4 hash) in its kernel table and forwards; `etcd`, an etcd
   * server namespace (198.18.0.250:2379); `backends`, how many backends (at most 9;
   * BACKENDS' count by default). `started` gets the lab before anything is
   * built, for a caller that must be able to destroy() it part-built.
   */
  static async create(
    tag: string,
    options: { router?: boolean; secondLb?: boolean; etcd?: boolean; backends?: number } = {},
    started?: (lab: Lab) => void,
  ): Promise<Lab> {
    const lab = new Lab(new Namespaces(tag), options.backends ?? BACKENDS.length);
    started?.(lab);
    try {
      lab.build();
      if (options.secondLb) lab.addLb(lab.ns.lb2, 'p-lb2', LAB.lb2v4, LAB.lb2v6);
      if (options.router) await lab.startRouter(options.secondLb ?? false);
      if (options.etcd) await lab.startEtcd();
      await lab.startBackends();
      return lab;
    } catch (error) {
      lab.destroy();
      throw error;
    }
  }

  private build(): void {
    for (const ns of [this.ns.sw, this.ns.client, this.ns.lb, ...this.ns.backends]) this.namespaces.create(ns);
    const sw = this.ns.sw;
    nsRun(sw, 'ip', ['link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
    nsRun(sw, 'ip', ['link', 'set', 'br0', 'up']);
    // With br_netfilter loaded these default to 1 and netfilter drops malformed frames before the balancer sees them (-e: absent without br_netfilter).
    nsRun(sw, 'sysctl', ['-qew', ...['iptables', 'ip6tables', 'arptables'].map((table) => `net.bridge.bridge-nf-call-${table}=0`)]);
    this.plug(this.ns.client, 'p-client', [`${LAB.client4}/${LAB.subnet4}`, `${LAB.client6}/${LAB.subnet6}`]);
    this.passObject = new BpfObject(LAB_PASS_OBJECT);
    this.addLb(this.ns.lb, 'p-lb', LAB.lb4, LAB.lb6, false);
    for (const n of this.backends) {
      const ns = this.backendNs(n);
      this.plug(ns, `p-b${n}`, [`${LAB.backend4(n)}/${LAB.subnet4}`, `${LAB.backend6(n)}/${LAB.subnet6}`]);
      for (const vip of LAB.vips4) nsRun(ns, 'ip', ['addr', 'add', `${vip}/32`, 'dev', 'lo']);
      for (const vip of LAB.vips6) nsRun(ns, 'ip', ['addr', 'add', `${vip}/128`, 'dev', 'lo', 'nodad']);
      for (const [key, value] of [
        ['net.ipv4.conf.all.arp_ignore', '1'],
        ['net.ipv4.conf.all.arp_announce', '2'],
        ['net.ipv4.conf.all.rp_filter', '0'],
        ['net.ipv4.conf.eth0.rp_filter', '0'],
      ]) {
        nsRun(ns, 'sysctl', ['-qw', `${key}=${value}`]);
      }
      this.backendMacs.push(this.mac(ns));
    }
    nsRun(this.ns.client, 'ip', ['route', 'add', LAB.vipPrefix4, 'via', LAB.lb4]);
    nsRun(this.ns.client, 'ip', ['-6', 'route', 'add', LAB.vipPrefix6, 'via', LAB.lb6]);
  }

  /**
   * A load-balancer host. XDP_TX frames from it are delivered promptly only if the
   * switch's end of its veth runs an XDP program (see bpf/lab/lab_pass.bpf.c).
   */
  private addLb(ns: string, port: string, v4: string, v6: string, create = true): void {
    if (create) this.namespaces.create(ns);
    this.plug(ns, port, [`${v4}/${LAB.subnet4}`, `${v6}/${LAB.subnet6}`]);
    // Health checks through the VIP connect to the VIP: the LB needs a route for it out of
    // eth0, as it has to its gateway in production; the client is its upstream here. The
    // next hop's MAC never matters: the tc probe program rewrites it.
    nsRun(ns, 'ip', ['route', 'add', LAB.vipPrefix4, 'via', LAB.client4]);
    nsRun(ns, 'ip', ['-6', 'route', 'add', LAB.vipPrefix6, 'via', LAB.client6]);
    const pass = this.passObject!.program('lab_pass');
    inNamespace(this.ns.sw, () => attachProgram(port, pass, 'native'));
    pass.close();
  }

  private async startEtcd(): Promise<void> {
    const ns = this.namespaces.create(this.ns.etcd);
    this.plug(ns, 'p-etcd', [`${LAB.etcd4}/${LAB.subnet4}`]);
    const client = `http://${LAB.etcd4}:2379`;
    this.etcd = await startEtcd(ns, 'lab', join(this.workDir, 'etcd'), client);
  }

  /** A host's eth0, its switch port, addresses, checksum offload off. */
  private plug(ns: string, port: string, addresses: string[]): void {
    nsRun(this.ns.sw, 'ip', ['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    nsRun(this.ns.sw, 'ip', ['link', 'set', port, 'master', 'br0', 'up']);
    nsRun(ns, 'sysctl', ['-qw', 'net.ipv6.conf.eth0.accept_dad=0']);
    for (const address of addresses) nsRun(ns, 'ip', ['addr', 'add', address, 'dev', 'eth0', ...(address.includes(':') ? ['nodad'] : [])]);
    nsRun(ns, 'ip', ['link', 'set', 'eth0', 'up']);
    // Partial checksums would be wrong after XDP rewrites a frame; compute them in software.
    nsRun(ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  }

  private mac(ns: string): string {
    return JSON.parse(nsRun(ns, 'ip', ['-j', 'link', 'show', 'eth0']))[0].address;
  }

  private async startBackends(): Promise<void> {
    for (const n of this.backends) {
      const decap = Decapsulator.open();
      this.decaps.push(decap);
      decap.addAddress(LAB.backend4(n));
      decap.addAddress(LAB.backend6(n));
      inNamespace(this.backendNs(n), () => decap.attach('eth0', 'native'));
      await this.startServer(n);
    }
  }

  /** Starts backend n's service; resolves once it listens. */
  async startServer(n: number): Promise<void> {
    const ns = this.backendNs(n);
    const server = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, SERVER, `b${n}`, String(LAB.tcpPort), String(LAB.udpPort), ...LAB.vips4, ...LAB.vips6],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    this.servers.set(n, server);
    const lines = createInterface({ input: server.stdout });
    const [line] = (await Promise.race([
      once(lines, 'line'),
      once(server, 'exit').then(() => [`exited with ${server.exitCode}`]),
    ])) as string[];
    if (line !== 'ready') throw new Error(`backend b${n} server: ${line}`);
    this.serverLines.set(n, lines);
  }

  /** Stops backend n's UDP service alone, or starts it again (TCP answers throughout); resolves once the server confirms. */
  async setUdpService(n: number, running: boolean): Promise<void> {
    const server = this.servers.get(n);
    const lines = this.serverLines.get(n);
    if (!server || !lines) throw new Error(`backend b${n} runs no server`);
    const confirmed = once(lines, 'line');
    server.kill(running ? 'SIGUSR2' : 'SIGUSR1');
    const [line] = (await confirmed) as string[];
    if (line !== (running ? 'udp ready' : 'udp stopped')) throw new Error(`backend b${n} server: ${line}`);
  }

  private async startRouter(secondLb: boolean): Promise<void> {
    const ns = this.namespaces.create(this.ns.router);
    this.plug(ns, 'p-router', [`${LAB.router4}/${LAB.subnet4}`, `${LAB.router6}/${LAB.subnet6}`]);
    nsRun(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    nsRun(ns, 'sysctl', ['-qw', 'net.ipv4.fib_multipath_hash_policy=1']); // ECMP by 5-tuple
    // The LBs are on the client's subnet: a redirect would send all the client's flows to the one LB it names.
    for (const conf of ['all', 'default', 'eth0']) nsRun(ns, 'sysctl', ['-qw', `net.ipv4.conf.${conf}.send_redirects=0`]);
    const session = (name: string, address: string) =>
      `protocol bgp ${name} { local ${LAB.router4} as ${LAB.routerAsn}; neighbor ${address} as ${LAB.lbAsn}; connect delay time 1; connect retry time 2; ipv4 { import all; export none; }; }`;
    const dir = join(this.workDir, 'router');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'bird.conf'),
      [
        `router id ${LAB.router4};`,
        'protocol device { }',
        'protocol kernel { ipv4 { import none; export all; }; merge paths on; }',
        'protocol kernel { ipv6 { import none; export all; }; merge paths on; }',
        session('lb1', LAB.lb4),
        ...(secondLb ? [session('lb2', LAB.lb2v4)] : []),
        '',
      ].join('\n'),
    );
    await execFileAsync('ip', [
      'netns',
      'exec',
      ns,
      'bird',
      '-c',
      join(dir, 'bird.conf'),
      '-s',
      join(dir, 'bird.ctl'),
      '-P',
      join(dir, 'bird.pid'),
    ]);
    this.routerPidFile = join(dir, 'bird.pid');
  }

  /** The router's kernel route to a VIP: its next hops, [] when it has none. */
  routerNextHops(vip: string): string[] {
    const [route] = JSON.parse(nsRun(this.ns.router, 'ip', ['-j', 'route', 'show', `${vip}/32`])) as {
      gateway?: string;
      nexthops?: { gateway: string }[];
    }[];
    if (!route) return [];
    return route.nexthops ? route.nexthops.map((h) => h.gateway).sort() : [route.gateway!];
  }

  /** Kills backend n's service (the host stays up, its port refuses connections). */
  async killServer(n: number): Promise<void> {
    const server = this.servers.get(n);
    this.servers.delete(n);
    this.serverLines.delete(n);
    if (!server || server.exitCode !== null) return;
    const exited = once(server, 'exit');
    server.kill('SIGKILL');
    await exited;
  }

  /** Where LB n (1 or 2) keeps its API socket, state file, pins and BIRD. */
  lbPaths(n: 1 | 2 = 1) {
    const dir = join(this.workDir, `lb${n}`);
    return { dir, socket: join(dir, 'api.sock'), state: join(dir, 'state.json'), bpffs: `${this.bpffs}-lb${n}`, bird: join(dir, 'bird') };
  }

  /**
   * Starts `xlb serve` inside LB n's namespace (nsenter keeps bpffs visible), its API
   * on a unix socket in the lab's work directory; resolves once /readyz answers 200.
   */
  async startDaemon(args: string[] = [], n: 1 | 2 = 1): Promise<DaemonProcess> {
    const paths = this.lbPaths(n);
    mkdirSync(paths.dir, { recursive: true });
    const child = spawn(
      'nsenter',
      [
        `--net=/run/netns/${n === 1 ? this.ns.lb : this.ns.lb2}`,
        process.execPath,
        CLI,
        'serve',
        '--iface',
        'eth0',
        '--api',
        `unix:${paths.socket}`,
        '--state',
        paths.state,
        '--bpffs',
        paths.bpffs,
        '--bird-dir',
        paths.bird,
        '--log-level',
        'warn',
        ...args,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    const socket = paths.socket;
    const daemon = new DaemonProcess(child, new ApiClient(`unix:${socket}`));
    this.daemons.push(daemon);
    await daemon.ready();
    return daemon;
  }
  /** Opens `count` flows from the client to target:port and reports who answered. */
  async client(proto: 'tcp' | 'udp', target: string, count: number, concurrency = 8): Promise<ClientSummary> {
    const port = proto === 'tcp' ? LAB.tcpPort : LAB.udpPort;
    const run = execFileAsync('ip', [
      'netns',
      'exec',
      this.ns.client,
      process.execPath,
      CLIENT,
      proto,
      target,
      String(port),
      String(count),
      String(concurrency),
    ]);
    this.clients.add(run.child);
    try {
      return JSON.parse((await run).stdout);
    } catch (error) {
      const e = error as { code?: number; signal?: string; stdout?: string; stderr?: string };
      throw new Error(`lab client exited (code ${e.code}, signal ${e.signal}): ${e.stderr || e.stdout || '(no output)'}`);
    } finally {
      this.clients.delete(run.child);
    }
  }

  /** Attaches (on) or detaches (off) backend n's decap program. */
  setDecap(n: number, on: boolean): void {
    const decap = this.decaps[n - 1];
    if (!decap) throw new RangeError(`backend ${n} has no decap program (backends: ${this.backends.join(', ')})`);
    inNamespace(this.backendNs(n), () => (on ? decap.attach('eth0', 'native') : detachProgram('eth0', 'native')));
  }

  /** Adds (on) or removes (off) a VIP on backend n's lo. */
  setVipOnLo(n: number, vip: string, on: boolean): void {
    const v6 = vip.includes(':');
    nsRun(this.backendNs(n), 'ip', [
      'addr',
      on ? 'add' : 'del',
      v6 ? `${vip}/128` : `${vip}/32`,
      'dev',
      'lo',
      ...(on && v6 ? ['nodad'] : []),
    ]);
  }

  /** Packets the decap program on backend n stripped so far. */
  decapsulated(n: number): number {
    const decap = this.decaps[n - 1];
    if (!decap) throw new RangeError(`backend ${n} has no decap program (backends: ${this.backends.join(', ')})`);
    return decap.counters().pass_decapsulated.packets;
  }

  /** Backend n's namespace (n counts from 1, as in backends). */
  private backendNs(n: number): string {
    const ns = this.ns.backends[n - 1];
    if (ns === undefined) throw new RangeError(`no backend ${n} (backends: ${this.backends.join(', ')})`);
    return ns;
  }

  /**
   * Holds `count` TCP connections open for `durationMs`, each sending a line every
   * 50 ms; a connection breaks if an answer fails or comes from another backend.
   * `connected` resolves once every connection has been answered once.
   */
  hold(target: string, count: number, durationMs: number): { connected: Promise<void>; done: Promise<HoldSummary> } {
    const child = spawn(
      'ip',
      ['netns', 'exec', this.ns.client, process.execPath, CLIENT, 'hold', target, String(LAB.tcpPort), String(count), String(durationMs)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    this.clients.add(child);
    child.once('exit', () => this.clients.delete(child));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const connected = lines.next().then(({ value }) => {
      if (value !== 'connected') throw new Error(`hold client: ${value}`);
    });
    const done = connected
      .then(() => lines.next())
      .then(({ value }) => {
        if (value === undefined) throw new Error('hold client: ended without a summary');
        return JSON.parse(value) as HoldSummary;
      });
    // A test that fails before awaiting `done` must not leave its rejection unhandled.
    done.catch(() => {});
    return { connected, done };
  }

  /** Removes everything the lab made, built or part-built; safe to call again. */
  destroy(): void {
    for (const daemon of this.daemons.splice(0)) daemon.kill();
    for (const client of this.clients) client.kill('SIGKILL');
    this.clients.clear();
    // BIRD processes this lab (or the daemons in it) started, by their pid files.
    for (const pidFile of [this.routerPidFile, ...([1, 2] as const).map((n) => join(this.lbPaths(n).bird, 'bird.pid'))]) {
      try {
        if (pidFile) process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
      } catch {
        // not running
      }
    }
    if (this.etcd?.exitCode === null) this.etcd.kill('SIGKILL');
    for (const server of this.servers.values()) {
      if (server.exitCode === null && server.pid) server.kill('SIGKILL');
    }
    this.servers.clear();
    for (const decap of this.decaps.splice(0)) decap.close();
    this.passObject?.close();
    this.passObject = undefined;
    this.namespaces.cleanup();
    for (const n of [1, 2] as const) rmSync(this.lbPaths(n).bpffs, { recursive: true, force: true });
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** An `xlb serve` process of the lab, and its API. */
export class DaemonProcess {
  constructor(
    readonly child: ChildProcess,
    readonly api: ApiClient,
  ) {}

  /** The body of a request that must succeed; throws naming the status and body otherwise. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.api.request<T>(method, path, body);
    if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body;
  }

  /** Polls /readyz until 200 (or the process exits, or 30 s pass). */
  async ready(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`xlb serve exited with ${this.child.exitCode}`);
      const status = await this.api.request('GET', '/readyz').then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200) return;
      if (Date.now() > deadline) throw new Error('xlb serve did not become ready in 30 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Stops the daemon with a signal and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill(signal);
    await exited;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
