/**
 * `xlb capture` against a real `xlb serve` in the netns lab: TCP traffic, a malformed
 * frame the balancer drops and an ICMP echo it answers are captured as received and
 * sent; tcpdump reads the file; the comments name each copy's outcome, VIP and backend;
 * --count ends a capture by itself; --vip and --outcome filter in the kernel; a second
 * capture is refused naming the first; after every capture the kernel's switch reads off;
 * and a daemon SIGKILLed mid-capture leaves the kernel copying for its lease at most.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BpfMap, ifNameToIndex, xdpQuery } from '@xlb/native';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { type ReadBlock, readBlocks } from '../control/capture/pcapng.js';
import { vipPath } from '../control/cli/client.js';
import { CAPTURE_LEASE_NS } from '../control/dataplane/capture.js';
import { captureScratchCodec, captureSettingsCodec } from '../control/dataplane/codec.js';
import { sumPerCpu, u32Bytes } from '../control/dataplane/struct.js';
import { BACKENDS, type DaemonProcess, Lab, LAB } from '../scripts/lab/lab.js';
import { inNamespace, nsRun } from '../scripts/lab/netns.js';
import { CLI, xlb } from './lib/cli.js';

const CHECK = { type: 'tcp', intervalMs: 200, timeoutMs: 200, rise: 1, fall: 2 } as const;
const DSR_VIP = LAB.vips4[0];
const IPIP_VIP = LAB.vips4[1];

let lab: Lab;
let daemon: DaemonProcess;
let api: string;
const captures = new Set<ChildProcess>();

beforeAll(async () => {
  lab = await Lab.create('capture');
  daemon = await lab.startDaemon();
  api = `unix:${lab.lbPaths().socket}`;
  for (const [vip, forwarding] of [
    [DSR_VIP, 'dsr'],
    [IPIP_VIP, 'ipip'],
  ] as const) {
    await daemon.api.request('PUT', vipPath('tcp', vip, LAB.tcpPort), { forwarding, healthCheck: CHECK });
    for (const n of BACKENDS) await daemon.api.request('PUT', vipPath('tcp', vip, LAB.tcpPort, LAB.backend4(n)), {});
    await until(
      async () => (await daemon.api.request<{ ringBackends: number }>('GET', vipPath('tcp', vip, LAB.tcpPort))).body.ringBackends === 3,
    );
  }
}, 60_000);
afterEach(async () => {
  // A capture a failed test left running: its client gone ends it in the daemon too.
  for (const child of captures) if (child.exitCode === null) child.kill('SIGKILL');
  captures.clear();
  await until(() => kernelSettings().until_ns === 0);
});
afterAll(() => lab?.destroy());

/** Waits for `done` (bounded: a CLI starts slowly on a busy host). */
async function until(done: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The value at 0 of a map of the program attached to the LB's eth0, by the map's name as the kernel keeps it (15 characters). */
function attachedMapValue(name: string): Buffer {
  const programId = inNamespace(lab.ns.lb, () => xdpQuery(ifNameToIndex('eth0'), 'native'));
  const { map_ids: mapIds } = JSON.parse(
    execFileSync('bpftool', ['-j', 'prog', 'show', 'id', String(programId)], { encoding: 'utf8' }),
  ) as {
    map_ids: number[];
  };
  for (const id of mapIds) {
    const map = BpfMap.fromId(id);
    try {
      if (map.info.name === name.slice(0, 15)) return map.lookup(u32Bytes(0))!;
    } finally {
      map.close();
    }
  }
  throw new Error(`program ${programId} has no map ${name}`);
}

/** The capture settings as the kernel holds them: the attached program's .data.capture. */
const kernelSettings = () => captureSettingsCodec.decode(attachedMapValue('.data.capture'));
/** Copies the kernel tried to hand over and could not (its buffers full, or their reader gone), all CPUs. */
const kernelLostCopies = () => sumPerCpu(captureScratchCodec, attachedMapValue('xlb_capscratch_v1')).lost;

/** Resolves once the kernel copies for `capture`; throws with its stderr if it ended first. */
async function started(capture: ReturnType<typeof startCapture>): Promise<void> {
  let waiting = true;
  const ended = capture.exited.then(({ code, stderr }) => {
    if (waiting) throw new Error(`xlb capture ended (${code}) before the kernel copied: ${stderr}`);
  });
  try {
    await Promise.race([until(() => kernelSettings().until_ns !== 0), ended]);
  } finally {
    waiting = false;
  }
}

/** `xlb capture ...args -w file` running; resolves with its exit once it ends. */
function startCapture(file: string, ...args: string[]) {
  const child = spawn(process.execPath, [CLI, 'capture', '--api', api, '-w', file, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  captures.add(child);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += String(chunk)));
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, stderr }));
  return { child, exited };
}

/** A frame to the LB's MAC whose IPv4 header length is 3 words: drop_malformed_ip. */
function sendMalformed(): void {
  const lbMac = JSON.parse(nsRun(lab.ns.lb, 'ip', ['-j', 'link', 'show', 'eth0']))[0].address as string;
  const clientMac = JSON.parse(nsRun(lab.ns.client, 'ip', ['-j', 'link', 'show', 'eth0']))[0].address as string;
  const mac = (text: string) => text.replaceAll(':', '');
  const frame = `${mac(lbMac)}${mac(clientMac)}0800` + '43000014000000004006000001020304c6130001' + '00'.repeat(26);
  const sender =
    "import socket,sys; s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind(('eth0',0)); s.send(bytes.fromhex(sys.argv[1]))";
  nsRun(lab.ns.client, 'python3', ['-c', sender, frame]);
}

/** `count` ICMP echo requests from the client to `address`, each waiting for its reply (there is no ping here). */
function echo(address: string, count: number): void {
  const pinger = [
    'import socket,struct,sys',
    's=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP); s.settimeout(2)',
    'def csum(b):',
    '  t=sum(struct.unpack("!%dH"%(len(b)//2),b)); t=(t>>16)+(t&0xffff); t+=t>>16; return ~t&0xffff',
    'for seq in range(1,int(sys.argv[2])+1):',
    '  head=struct.pack("!BBHHH",8,0,0,0x1234,seq); body=b"xlb capture "',
    '  s.sendto(struct.pack("!BBHHH",8,0,csum(head+body),0x1234,seq)+body,(sys.argv[1],0))',
    '  while True:',
    '    data=s.recvfrom(2048)[0]',
    '    if data[20]==0 and struct.unpack("!H",data[26:28])[0]==seq: break',
  ].join('\n');
  nsRun(lab.ns.client, 'python3', ['-c', pinger, address, String(count)]);
}

type Packet = Extract<ReadBlock, { type: 'packet' }>;
const packetsOf = (file: string): Packet[] => readBlocks(readFileSync(file)).blocks.filter((b): b is Packet => b.type === 'packet');
/** A comment's fields: direction, outcome, then key=value. */
function fields(comment: string | null) {
  const [direction, outcome, ...rest] = (comment ?? '').split(' ');
  return { direction, outcome, ...Object.fromEntries(rest.map((kv) => kv.split('='))) } as Record<string, string | undefined>;
}
const tcpdump = (file: string) => execFileSync('tcpdump', ['-n', '-r', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
const summaryPackets = (stderr: string) => Number(/(\d+) packets/.exec(stderr)?.[1]);

describe('xlb capture', () => {
  test('traffic, a dropped malformed frame and an ICMP echo: received and sent copies, commented, readable by tcpdump', async () => {
    const file = join(lab.workDir, 'all.pcapng');
    expect(kernelSettings().until_ns).toBe(0);
    const capture = startCapture(file);
    await started(capture);

    const second = await xlb('capture', '--api', api, '-w', join(lab.workDir, 'second.pcapng'));
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/409: a capture is already running \(everything, since /);

    const traffic = await lab.client('tcp', DSR_VIP, 10);
    expect(traffic.ok).toBe(10);
    sendMalformed();
    echo(IPIP_VIP, 2);
    // Until every echo's copies are in (the last packets the balancer saw), then Ctrl-C.
    await until(() => packetsOf(file).filter((p) => fields(p.comment).outcome === 'tx_icmp_echo_reply').length === 4);
    capture.child.kill('SIGINT');
    const { code, stderr } = await capture.exited;
    expect(code).toBe(0);
    expect(kernelSettings().until_ns).toBe(0);

    const packets = packetsOf(file);
    const received = packets.filter((p) => fields(p.comment).direction === 'received');
    expect(summaryPackets(stderr)).toBe(received.length);
    expect(stderr).toMatch(/lost in the kernel buffer: 0 copies; dropped by the daemon \(reader too slow\): 0 packets/);
    // tcpdump reads every copy, the echo request as received and the reply as sent among them.
    const text = tcpdump(file);
    expect(text.trim().split('\n')).toHaveLength(packets.length);
    expect(text).toMatch(new RegExp(`${LAB.client4} > ${IPIP_VIP}: ICMP echo request`));
    expect(text).toMatch(new RegExp(`${IPIP_VIP} > ${LAB.client4}: ICMP echo reply`));

    // Every forwarded packet comes received, then sent to its backend's MAC (the same packet id).
    const backends = new Map(BACKENDS.map((n, i) => [LAB.backend4(n), lab.backendMacs[i]!]));
    const forwarded = received.filter((p) => fields(p.comment).outcome === 'tx_dsr');
    expect(forwarded.length).toBeGreaterThanOrEqual(30); // SYN, request, ACKs, FIN per flow
    for (const p of forwarded) {
      const f = fields(p.comment);
      expect(f.vip).toBe(`tcp/${DSR_VIP}:80`);
      const sent = packets.find((s) => fields(s.comment).direction === 'sent' && fields(s.comment).packet === f.packet)!;
      expect(fields(sent.comment)).toEqual({ ...f, direction: 'sent' });
      const mac = [...sent.data.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
      expect(mac).toBe(backends.get(f.backend!));
      expect(sent.data.subarray(12)).toEqual(p.data.subarray(12)); // dsr rewrites MACs only
    }
    const malformed = packets.filter((p) => fields(p.comment).outcome === 'drop_malformed_ip');
    expect(malformed.map((p) => [fields(p.comment).direction, p.data[14]])).toEqual([['received', 0x43]]);
    const echoes = packets.filter((p) => fields(p.comment).outcome === 'tx_icmp_echo_reply').map((p) => fields(p.comment).direction);
    expect(echoes).toEqual(['received', 'sent', 'received', 'sent']);
  });

  test('--count ends the capture by itself after that many packets, each with its sent copy', async () => {
    const file = join(lab.workDir, 'count.pcapng');
    // To the VIP only: the checks' answers pass the balancer too, and could end it first.
    const capture = startCapture(file, '--vip', `tcp/${DSR_VIP}:80`, '--count', '5');
    await started(capture);
    const traffic = lab.client('tcp', DSR_VIP, 20);
    const { code, stderr } = await capture.exited;
    await traffic;
    expect(code).toBe(0);
    expect(kernelSettings().until_ns).toBe(0);
    const packets = packetsOf(file);
    expect(packets.filter((p) => fields(p.comment).direction === 'received')).toHaveLength(5);
    expect(summaryPackets(stderr)).toBe(5);
    expect(tcpdump(file).trim().split('\n')).toHaveLength(packets.length);
  });

  test('-w - writes the capture to stdout, for tcpdump -r -', async () => {
    const cli = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} capture --api ${api} --vip tcp/${DSR_VIP}:80 --count 3 -w -`;
    const piped = new Promise<string>((resolve, reject) =>
      execFile('sh', ['-c', `${cli} | tcpdump -n -r - 2>/dev/null`], (error, stdout) => (error ? reject(error) : resolve(stdout))),
    );
    await until(() => kernelSettings().until_ns !== 0);
    await lab.client('tcp', DSR_VIP, 3);
    const lines = (await piped).trim().split('\n');
    // Three packets to the VIP, each received and sent (dsr keeps the addresses).
    expect(lines).toHaveLength(6);
    for (const line of lines) expect(line).toMatch(new RegExp(` > ${DSR_VIP.replaceAll('.', '\\.')}\\.80: `));
  });

  test('the kernel filter: --vip keeps other VIPs out; --outcome drop_* keeps only drops', async () => {
    const vipFile = join(lab.workDir, 'vip.pcapng');
    const byVip = startCapture(vipFile, '--vip', `tcp/${IPIP_VIP}:80`, '--count', '20');
    await started(byVip);
    await Promise.all([lab.client('tcp', DSR_VIP, 20), lab.client('tcp', IPIP_VIP, 20)]);
    expect((await byVip.exited).code).toBe(0);
    const vips = new Set(packetsOf(vipFile).map((p) => `${fields(p.comment).vip} ${fields(p.comment).outcome}`));
    expect(vips).toEqual(new Set([`tcp/${IPIP_VIP}:80 tx_ipip`]));

    const dropFile = join(lab.workDir, 'drops.pcapng');
    const drops = startCapture(dropFile, '--outcome', 'drop_*', '--count', '2');
    await started(drops);
    await lab.client('tcp', DSR_VIP, 5);
    sendMalformed();
    sendMalformed();
    expect((await drops.exited).code).toBe(0);
    expect(packetsOf(dropFile).map((p) => fields(p.comment).outcome)).toEqual(['drop_malformed_ip', 'drop_malformed_ip']);
    expect(kernelSettings().until_ns).toBe(0);
  });

  test('a client that goes away ends the capture: the kernel stops copying, and the next capture may start', async () => {
    const gone = startCapture(join(lab.workDir, 'gone.pcapng'));
    await started(gone);
    gone.child.kill('SIGKILL');
    await until(() => kernelSettings().until_ns === 0);
    const next = startCapture(join(lab.workDir, 'next.pcapng'), '--vip', `tcp/${DSR_VIP}:80`, '--count', '1');
    await started(next);
    await lab.client('tcp', DSR_VIP, 1);
    expect((await next.exited).code).toBe(0);
  });

  test('a daemon SIGKILLed mid-capture: the kernel copies for the rest of its lease at most, then clears it', async () => {
    const capture = startCapture(join(lab.workDir, 'killed.pcapng'));
    await started(capture);
    await daemon.stop('SIGKILL');
    const killedAt = process.hrtime.bigint(); // the kernel's clock (CLOCK_MONOTONIC)
    // The last renewal came before the kill: the lease ends a lease's length after it at most.
    expect(BigInt(kernelSettings().until_ns)).toBeLessThanOrEqual(killedAt + CAPTURE_LEASE_NS);
    expect((await capture.exited).code).not.toBe(0);
    // Traffic through the balancer (still attached) until a packet finds the lease over and clears it.
    await until(async () => {
      await lab.client('tcp', DSR_VIP, 1);
      return kernelSettings().until_ns === 0;
    }, 10_000);
    // Off: no copy is even tried (each one would fail, its reader gone, and count as lost).
    const lost = kernelLostCopies();
    expect((await lab.client('tcp', DSR_VIP, 5)).ok).toBe(5);
    expect(kernelLostCopies()).toBe(lost);
    expect(kernelSettings().until_ns).toBe(0);
    daemon = await lab.startDaemon();
    expect(kernelSettings().until_ns).toBe(0);
  });

  test('the daemon stopping ends a capture cleanly: statistics written, the CLI reports', async () => {
    const file = join(lab.workDir, 'stopping.pcapng');
    const capture = startCapture(file);
    await started(capture);
    await lab.client('tcp', DSR_VIP, 2);
    await daemon.stop('SIGTERM');
    const { code, stderr } = await capture.exited;
    expect(code).toBe(0);
    expect(readBlocks(readFileSync(file)).blocks.at(-1)).toMatchObject({ type: 'statistics', lostInKernel: 0n, droppedByDaemon: 0n });
    expect(summaryPackets(stderr)).toBe(packetsOf(file).filter((p) => fields(p.comment).direction === 'received').length);
    daemon = await lab.startDaemon();
  });

  test('bad flags are refused naming the flag, before anything starts', async () => {
    const bad = await xlb('capture', '--api', api, '-w', join(lab.workDir, 'x.pcapng'), '--outcome', 'dorp_*');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--outcome: "dorp_\*" names no outcome/);
    expect(kernelSettings().until_ns).toBe(0);
  });
});
