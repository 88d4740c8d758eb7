/**
 * TCP connections from a namespace, held open and idle while a test changes the load
 * balancer under them, then asked again: which backend answers each, before and after
 * (held-connections.mjs is the client process).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { packagePath } from '../../control/paths.js';

const CLIENT = packagePath('test/lib/held-connections.mjs');

/** One round of questions: the backend that answered each connection (null: it failed), and the first errors. */
export interface Round {
  names: (string | null)[];
  errors: string[];
}

export class HeldConnections {
  private readonly child: ChildProcess;
  private readonly rounds: AsyncIterator<string>;

  private constructor(child: ChildProcess) {
    this.child = child;
    this.rounds = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  }

  /** Opens `count` connections from namespace `ns` to host:port; resolves once each has answered (or failed) once. */
  static async open(ns: string, host: string, port: number, count: number): Promise<{ held: HeldConnections; first: Round }> {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, CLIENT, host, String(port), String(count)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const held = new HeldConnections(child);
    try {
      return { held, first: await held.round() };
    } catch (error) {
      held.close();
      throw error;
    }
  }

  /** Every connection sends another line; who answered each. */
  async ask(): Promise<Round> {
    this.child.stdin!.write('ask\n');
    return this.round();
  }

  private async round(): Promise<Round> {
    const { value, done } = await this.rounds.next();
    if (done) throw new Error(`held connections' client exited (${this.child.exitCode ?? this.child.signalCode}) without an answer`);
    return JSON.parse(value) as Round;
  }

  /** Ends the client and with it every connection; safe to call again. */
  close(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
