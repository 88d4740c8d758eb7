/**
 * `npm run demo`, the README's first command, run as a user runs it: it must balance
 * real TCP over the netns lab, fail over, and leave nothing behind — also when cut
 * short by Ctrl-C or by its output going away (`npm run demo | head`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { packagePath } from '../control/paths.js';
import { sh } from '../scripts/lab/netns.js';

const DEMO = packagePath('dist/scripts/demo.js');

interface Run {
  child: ChildProcess;
  /** Every process the run started carries it in its environment. */
  mark: string;
  output: () => string;
}

function startDemo(): Run {
  const mark = randomUUID();
  const child = spawn(process.execPath, [DEMO], { env: { ...process.env, XLB_DEMO_TEST: mark }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, mark, output: () => output };
}

async function outputUntil(run: Run, text: string): Promise<void> {
  while (!run.output().includes(text)) {
    if (run.child.exitCode !== null) throw new Error(`demo exited before "${text}":\n${run.output()}`);
    await once(run.child.stdout!, 'data');
  }
}

async function exitCode(run: Run): Promise<number | null> {
  if (run.child.exitCode === null) await once(run.child, 'exit');
  return run.child.exitCode;
}

/** What a run made, found by its namespace prefix and its environment mark. */
function made(run: Run) {
  const prefix = `xlbt-demo-${run.child.pid! % 100000}`;
  return {
    namespaces: sh('ip', ['netns', 'list'])
      .split('\n')
      .map((line) => line.split(' ')[0]!)
      .filter((name) => name.startsWith(`${prefix}-`)),
    pins: readdirSync('/sys/fs/bpf')
      .filter((name) => name.startsWith(prefix))
      .map((name) => `/sys/fs/bpf/${name}`),
    work: readdirSync(tmpdir())
      .filter((name) => name.startsWith(`${prefix}-`))
      .map((name) => join(tmpdir(), name)),
    processes: () =>
      readdirSync('/proc').filter((pid) => {
        if (!/^\d+$/.test(pid)) return false;
        try {
          return readFileSync(`/proc/${pid}/environ`, 'utf8').includes(`XLB_DEMO_TEST=${run.mark}`);
        } catch {
          return false; // exited meanwhile
        }
      }),
  };
}

/**
 * What a run left behind. A process sent SIGKILL as the run ended may take a moment to
 * go: processes get until a deadline to disappear.
 */
async function leftovers(run: Run): Promise<string[]> {
  const { namespaces, pins, work, processes: marked } = made(run);
  const deadline = Date.now() + 5000;
  let processes = marked();
  while (processes.length && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    processes = marked();
  }
  const described = processes.map((pid) => {
    try {
      return `process ${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')}`;
    } catch {
      // The process exited while listed: its pid is all there is to say.
      return `process ${pid}`;
    }
  });
  return [...namespaces, ...pins, ...work, ...described];
}

/** Removes whatever a failed run left, so one failure does not leak into the machine. */
function sweep(run: Run): void {
  if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
  const { namespaces, pins, work, processes } = made(run);
  for (const pid of processes()) process.kill(Number(pid), 'SIGKILL');
  for (const ns of namespaces) sh('ip', ['netns', 'del', ns]);
  for (const dir of [...pins, ...work]) rmSync(dir, { recursive: true, force: true });
}

let run: Run | undefined;
afterEach(() => {
  if (run) sweep(run);
  run = undefined;
});

describe('npm run demo', () => {
  test('balances real TCP over the lab, fails over, and leaves nothing behind', async () => {
    run = startDemo();
    expect(await exitCode(run), run.output()).toBe(0);
    const output = run.output();
    expect(output.match(/600 answered, 0 failed/g), output).toHaveLength(2);
    const afterKill = output.slice(output.indexOf('Killing the service on backend b2'));
    expect(afterKill).toMatch(/b2 198\.18\.0\.12 +0 flows/);
    expect(output).toContain('done');
    expect(await leftovers(run)).toEqual([]);
  });

  test('interrupted with Ctrl-C (SIGINT) mid-run, it removes its lab and exits 130', async () => {
    run = startDemo();
    await outputUntil(run, 'Sending 600 TCP connections');
    run.child.kill('SIGINT');
    expect(await exitCode(run), run.output()).toBe(130);
    expect(await leftovers(run)).toEqual([]);
  });

  test('when its output goes away (npm run demo | head), it removes its lab and exits 141', async () => {
    run = startDemo();
    await outputUntil(run, 'Starting xlb serve');
    run.child.stdout!.destroy();
    expect(await exitCode(run), run.output()).toBe(141);
    expect(await leftovers(run)).toEqual([]);
  });
});
