// The lab client; prints a JSON summary {ok, failed, broken, byBackend, brokenByBackend,
// failedAt (when each failed flow began, or broke if it had connected; ms since the
// epoch), errors}.
//   node client.mjs tcp|udp HOST PORT COUNT CONCURRENCY
//     COUNT flows, CONCURRENCY at a time, each one line and its answer.
//   node client.mjs hold HOST PORT COUNT DURATION_MS
//     COUNT TCP connections held open, each sending a line every 50 ms; one breaks
//     when an answer fails, times out or comes from a different backend. Prints
//     "connected" once every connection has had its first answer (or failed).
import dgram from 'node:dgram';
import net from 'node:net';

const [proto, host, port, count, concurrencyOrDuration] = process.argv.slice(2);
const TIMEOUT_MS = 5000;

function tcpFlow(i) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port: Number(port) });
    let answer = '';
    let connectedAt = null;
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error('timeout')));
    socket.on('connect', () => {
      connectedAt = Date.now();
      socket.write(`flow-${i}\n`);
    });
    socket.on('data', (chunk) => {
      answer += chunk;
      if (answer.includes('\n')) {
        socket.end();
        resolve(answer.split(' ')[0]);
      }
    });
    // A backend that dies closes the connection, maybe without an error: the flow failed.
    socket.on('close', () =>
      reject(Object.assign(new Error('closed before answering'), { failedAt: connectedAt === null ? undefined : Date.now() })),
    );
    // A connection that breaks after it was made failed when it broke, not when it began.
    socket.on('error', (error) => reject(Object.assign(error, { failedAt: connectedAt === null ? undefined : Date.now() })));
  });
}

function udpFlow(i) {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('timeout'));
    }, TIMEOUT_MS);
    socket.on('message', (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve(String(msg).split(' ')[0]);
    });
    socket.on('error', reject);
    socket.send(`flow-${i}`, Number(port), host);
  });
}

/** One held connection: resolves to its backend, or rejects (with .broken when it was established). */
let awaitingFirstAnswer = Number(count);
const firstAnswer = () => {
  if (--awaitingFirstAnswer === 0) process.stdout.write('connected\n');
};

function holdFlow(i, durationMs) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port: Number(port) });
    let backend = null;
    let buffer = '';
    let sent = 0;
    let timer = null;
    let settled = false;
    const fail = (message) => {
      if (settled) return;
      settled = true;
      if (backend === null) firstAnswer();
      clearInterval(timer);
      socket.destroy();
      reject(Object.assign(new Error(message), { broken: backend !== null, backend }));
    };
    socket.setTimeout(TIMEOUT_MS, () => fail(`flow ${i}: no answer in ${TIMEOUT_MS} ms`));
    socket.on('error', (error) => fail(`flow ${i}: ${error.code ?? error.message}`));
    socket.on('close', () => {
      if (Date.now() < end) fail(`flow ${i}: closed by peer`);
    });
    const end = Date.now() + durationMs;
    socket.on('connect', () => {
      const tick = () => {
        if (Date.now() >= end) {
          settled = true;
          clearInterval(timer);
          socket.removeAllListeners('close');
          socket.end();
          resolve(backend);
          return;
        }
        socket.write(`flow-${i}-${sent++}\n`);
      };
      tick();
      timer = setInterval(tick, 50);
    });
    socket.on('data', (chunk) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const name = buffer.slice(0, nl).split(' ')[0];
        buffer = buffer.slice(nl + 1);
        if (backend === null) {
          backend = name;
          firstAnswer();
        } else if (name !== backend) fail(`flow ${i}: answered by ${name}, was ${backend}`);
      }
    });
  });
}

const summary = { ok: 0, failed: 0, broken: 0, byBackend: {}, brokenByBackend: {}, failedAt: [], errors: [] };
let next = 0;
async function worker() {
  while (next < Number(count)) {
    const i = next++;
    await record(i, proto === 'tcp' ? tcpFlow(i) : udpFlow(i));
  }
}

async function record(i, flow) {
  const startedAt = Date.now();
  try {
    const backend = await flow;
    summary.ok++;
    summary.byBackend[backend] = (summary.byBackend[backend] ?? 0) + 1;
  } catch (error) {
    if (error.broken) {
      summary.broken++;
      summary.brokenByBackend[error.backend] = (summary.brokenByBackend[error.backend] ?? 0) + 1;
    } else {
      summary.failed++;
      summary.failedAt.push(error.failedAt ?? startedAt);
    }
    if (summary.errors.length < 5) summary.errors.push(String(error.message ?? error));
  }
}

if (proto === 'hold') {
  await Promise.all(Array.from({ length: Number(count) }, (_, i) => record(i, holdFlow(i, Number(concurrencyOrDuration)))));
} else {
  await Promise.all(Array.from({ length: Number(concurrencyOrDuration) }, worker));
}
process.stdout.write(JSON.stringify(summary) + '\n');
