// The lab client: opens COUNT flows to HOST:PORT over tcp or udp, CONCURRENCY at a
// time, each sending one line and awaiting the answer; prints a JSON summary
// {ok, failed, byBackend, errors}. Usage: node client.mjs PROTO HOST PORT COUNT CONCURRENCY
import dgram from 'node:dgram';
import net from 'node:net';

const [proto, host, port, count, concurrency] = process.argv.slice(2);
const TIMEOUT_MS = 5000;

function tcpFlow(i) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port: Number(port) });
    let answer = '';
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error('timeout')));
    socket.on('connect', () => socket.write(`flow-${i}\n`));
    socket.on('data', (chunk) => {
      answer += chunk;
      if (answer.includes('\n')) {
        socket.end();
        resolve(answer.split(' ')[0]);
      }
    });
    socket.on('error', reject);
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

const summary = { ok: 0, failed: 0, byBackend: {}, errors: [] };
let next = 0;
async function worker() {
  while (next < Number(count)) {
    const i = next++;
    try {
      const backend = await (proto === 'tcp' ? tcpFlow(i) : udpFlow(i));
      summary.ok++;
      summary.byBackend[backend] = (summary.byBackend[backend] ?? 0) + 1;
    } catch (error) {
      summary.failed++;
      if (summary.errors.length < 5) summary.errors.push(String(error.message ?? error));
    }
  }
}
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
process.stdout.write(JSON.stringify(summary) + '\n');
