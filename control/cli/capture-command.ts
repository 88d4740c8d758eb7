/**
 * `xlb capture`: streams GET /v1/capture into a pcapng file (or stdout with `-w -`),
 * ends the capture cleanly on Ctrl-C (DELETE /v1/capture, then the rest of the
 * stream), and prints on stderr what it captured and what was lost.
 */
import { createWriteStream } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { captureQuerySchema, MAX_CAPTURE_COUNT, MAX_SNAPLEN } from '../capture/filter.js';
import { type ReadBlock, readBlocks } from '../capture/pcapng.js';
import { apiClient, call, type ClientOptions, refusal, unreachable, withClient } from './api-call.js';
import { CliError } from './errors.js';

interface CaptureOptions extends ClientOptions {
  vip?: string;
  backend?: string;
  outcome?: string[];
  count?: string;
  snaplen?: string;
  write: string;
}

/** The query of the flags, each checked by the API's own schema and named when refused (the schema's message names the value). */
function captureQuery(options: CaptureOptions): URLSearchParams {
  const query = new URLSearchParams();
  const flags = {
    vip: options.vip,
    backend: options.backend,
    outcome: options.outcome?.join(','),
    count: options.count,
    snaplen: options.snaplen,
  };
  for (const [name, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    const result = captureQuerySchema.shape[name as keyof typeof flags].safeParse(value);
    if (!result.success) throw new CliError(`--${name}: ${result.error.issues[0]?.message ?? `invalid: ${JSON.stringify(value)}`}`);
    query.set(name, value);
  }
  return query;
}

/** Counts the stream's packets as they pass: received copies, all copies, and the statistics at the end. */
class Tally {
  packets = 0;
  copies = 0;
  statistics: Extract<ReadBlock, { type: 'statistics' }> | null = null;
  private rest: Buffer = Buffer.alloc(0);

  add(chunk: Buffer): void {
    const { blocks, rest } = readBlocks(Buffer.concat([this.rest, chunk]));
    this.rest = rest;
    for (const block of blocks) {
      if (block.type === 'packet') {
        this.copies++;
        if (block.comment?.startsWith('received ')) this.packets++;
      } else if (block.type === 'statistics') this.statistics = block;
    }
  }

  summary(file: string): string {
    const s = this.statistics!;
    return (
      `xlb capture: ${this.packets} packets (${this.copies} copies, received and sent) to ${file === '-' ? 'stdout' : file}; ` +
      `lost in the kernel buffer: ${s.lostInKernel} copies; dropped by the daemon (reader too slow): ${s.droppedByDaemon} packets\n`
    );
  }
}

function finished(output: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (output === process.stdout) return resolve();
    output.once('error', reject);
    output.end(resolve);
  });
}

async function capture(options: CaptureOptions): Promise<void> {
  const query = captureQuery(options);
  const client = apiClient(options.api, options.tokenFile, options.caFile);
  let response: IncomingMessage;
  try {
    response = await client.stream(`/v1/capture${query.size ? `?${query}` : ''}`);
  } catch (error) {
    throw unreachable(options, error);
  }
  if ((response.statusCode ?? 0) >= 400) throw await refusal(response);
  const output: Writable = options.write === '-' ? process.stdout : createWriteStream(options.write, { mode: 0o600 });
  const tally = new Tally();
  let interrupted = false;
  const stop = () => {
    // A second Ctrl-C leaves without waiting for the end.
    if (interrupted) process.exit(130);
    interrupted = true;
    call(options, 'DELETE', '/v1/capture').catch(() => response.destroy());
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    for await (const chunk of response) {
      tally.add(chunk as Buffer);
      if (!output.write(chunk)) await new Promise<void>((resolve) => output.once('drain', () => resolve()));
    }
  } catch (error) {
    if (!interrupted) throw unreachable(options, error);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await finished(output);
  }
  if (!tally.statistics)
    throw new CliError(`the capture ended without its statistics block (the daemon went away?); ${tally.packets} packets written`);
  process.stderr.write(tally.summary(options.write));
}

export function addCaptureCommand(program: Command): void {
  withClient(
    program
      .command('capture')
      .description(
        "capture packets as the balancer received and sent them, with outcome, VIP and backend in each packet's comment (pcapng); Ctrl-C ends it",
      )
      .requiredOption('-w, --write <file>', 'pcapng file to write, - for stdout (e.g. | tcpdump -r -)')
      .option('--vip <vip>', 'only this VIP: PROTO/ADDR:PORT, e.g. tcp/198.51.100.10:80')
      .option('--backend <address>', 'only packets sent to this backend')
      .option('--outcome <name...>', 'only these outcomes, as in /v1/stats; globs allowed (quote them): drop_* tx_*')
      .option('--count <n>', `stop after this many packets (each with its sent copy), 1..${MAX_CAPTURE_COUNT}`)
      .option('--snaplen <bytes>', `bytes kept of each frame, 1..${MAX_SNAPLEN}`),
  ).action((options: CaptureOptions) => capture(options));
}
