/** `xlb events`: follows the daemon's /v1/events like `tail -f`, a line per event (or a JSON object per line). */
import type { Command } from 'commander';
import { eventsQuerySchema } from '../api/event-schema.js';
import { eventText } from '../controller/event-text.js';
import type { EventGap, RecordedEvent, StatsView } from '../controller/views.js';
import { vipKeyText } from '../state/schema.js';
import { apiClient, type ClientOptions, refusal, unreachable, withClient } from './api-call.js';
import { CliError } from './errors.js';
import { formatRate } from './format.js';

type StreamMessage = RecordedEvent | EventGap | ({ type: 'stats' } & StatsView);

interface EventsOptions extends ClientOptions {
  since?: string;
  stats?: boolean;
}

function line(message: StreamMessage): string {
  switch (message.type) {
    case 'gap':
      return `-- ${eventText(message)}`;
    case 'stats':
      return `${message.at} stats ${message.vips.map((v) => `${vipKeyText(v)} ${formatRate(v.packetsPerSecond, 'pkt/s')}`).join(', ') || 'no VIPs'}`;
    default:
      return `${message.at} #${message.id} ${eventText(message)}`;
  }
}

/** An event id as the API's `?since=` takes it, checked by the same schema. */
function eventId(option: string, text: string | undefined): string | undefined {
  const result = eventsQuerySchema.shape.since.safeParse(text);
  if (!result.success) throw new CliError(`${option}: ${result.error.issues[0]?.message ?? 'not an event id'}: ${JSON.stringify(text)}`);
  return result.data;
}

/** Prints events until the daemon ends the stream: after its shutdown event that is the end (resolves), otherwise an error. */
function follow(options: EventsOptions): Promise<void> {
  const since = eventId('--since', options.since);
  const socket = apiClient(options.api, options.tokenFile, options.caFile).webSocket(
    `/v1/events${since === undefined ? '' : `?since=${since}`}`,
  );
  let shutDown = false;
  return new Promise((resolve, reject) => {
    socket.on('unexpected-response', (request, response) => {
      // The body holds the API's reason: read it before the request (and its socket) goes.
      void refusal(response)
        .then(reject, reject)
        .finally(() => request.destroy());
    });
    socket.on('error', (error) => reject(unreachable(options, error)));
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as StreamMessage;
      if (message.type === 'stats' && !options.stats) return;
      if (message.type === 'shutdown') shutDown = true;
      process.stdout.write(`${options.json ? JSON.stringify(message) : line(message)}\n`);
    });
    socket.on('close', (code, reason) => {
      if (shutDown) return resolve();
      // 1013: the daemon has its most event clients; another may follow later.
      const why = `${reason.length ? `: ${String(reason)}` : ''}${code === 1013 ? '; try again later' : ''}`;
      reject(new CliError(`the daemon closed the event stream (code ${code}${why})`));
    });
  });
}

export function addEventsCommand(program: Command): void {
  withClient(
    program
      .command('events')
      .description(
        "follow the daemon's events like tail -f: configuration changes, health transitions, attach and detach, start and shutdown",
      )
      .option('--since <id>', 'first replay the kept events after this id (0: all the daemon keeps, the last 1000)')
      .option('--stats', 'also print the stats tick each second'),
  ).action((options: EventsOptions) => follow(options));
}
