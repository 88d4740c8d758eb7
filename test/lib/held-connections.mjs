// TCP connections held open and idle between two rounds of questions, for a test that
// changes the load balancer under them (see held-connections.ts).
//   node held-connections.mjs HOST PORT COUNT
// Opens COUNT connections (CONCURRENCY at a time, each from its own source port); each
// sends a line and reads the answering backend's name (the first word of the answer).
// Prints one JSON line: the names, in connection order (null where it failed), and
// the first errors. Then, at each line "ask" on stdin, every connection sends another
// line and the same JSON line follows for that round; a connection that broke in
// between (reset, closed) or does not answer within TIMEOUT_MS answers null. Exits
// when stdin closes.
import net from 'node:net';
import readline from 'node:readline';

const [host, port, count] = process.argv.slice(2);
const CONCURRENCY = 64;
const TIMEOUT_MS = 5000;
const MAX_ERRORS = 5;

/** One connection: a line at a time, each answer's first word or the error that ended it. */
class Held {
  constructor(i) {
    this.i = i;
    this.error = null;
    this.buffer = '';
    this.waiting = null;
    this.socket = net.connect({ host, port: Number(port) });
    this.socket.on('data', (chunk) => {
      this.buffer += chunk;
      const nl = this.buffer.indexOf('\n');
      if (nl < 0) return;
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      this.settle(null, line.split(' ')[0]);
    });
    this.socket.on('error', (error) => this.fail(error.code ?? error.message));
    this.socket.on('close', () => this.fail('closed by peer'));
  }

  fail(reason) {
    this.error ??= reason;
    this.settle(this.error, null);
  }

  settle(error, name) {
    const waiting = this.waiting;
    this.waiting = null;
    if (!waiting) return;
    clearTimeout(waiting.timer);
    waiting.done({ error, name });
  }

  /** Sends a line; resolves to {name} of the backend that answered, or {error}. */
  ask(round) {
    if (this.error) return Promise.resolve({ error: this.error, name: null });
    return new Promise((done) => {
      const timer = setTimeout(() => this.fail(`no answer in ${TIMEOUT_MS} ms`), TIMEOUT_MS);
      this.waiting = { done, timer };
      this.socket.write(`connection-${this.i}-round-${round}\n`);
    });
  }
}

const held = [];
let round = 0;

/** Asks every connection (at most CONCURRENCY waiting at once) and prints the round's summary. */
async function askAll(connections) {
  const answers = new Array(connections.length);
  let next = 0;
  const worker = async () => {
    while (next < connections.length) {
      const i = next++;
      answers[i] = await connections[i]();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const errors = answers.filter((a) => a.error).map((a) => a.error);
  process.stdout.write(JSON.stringify({ names: answers.map((a) => a.name), errors: errors.slice(0, MAX_ERRORS) }) + '\n');
  round++;
}

await askAll(
  Array.from({ length: Number(count) }, (_, i) => () => {
    const connection = new Held(i);
    held.push(connection);
    return connection.ask(round);
  }),
);
const commands = readline.createInterface({ input: process.stdin });
for await (const line of commands) {
  if (line === 'ask') await askAll(held.map((connection) => () => connection.ask(round)));
}
for (const connection of held) connection.socket.destroy();
