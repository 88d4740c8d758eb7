// The lab client for flows from chosen source ports: one TCP connection per port, a
// line each, and the backend's name from its answer. Prints {"PORT": "bN", ...}.
//   node fixed-port-client.mjs HOST PORT FIRST_SOURCE_PORT COUNT
import net from 'node:net';

const [host, port, first, count] = process.argv.slice(2).map((a, i) => (i === 0 ? a : Number(a)));
const TIMEOUT_MS = 5000;
const CONCURRENCY = 8;

function flowFrom(localPort) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localPort });
    let answer = '';
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error(`timeout from port ${localPort}`)));
    socket.on('connect', () => socket.write(`from-${localPort}\n`));
    socket.on('data', (chunk) => {
      answer += chunk;
      if (!answer.includes('\n')) return;
      socket.end();
      resolve(answer.split(' ')[0]);
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed before answering, from port ${localPort}`)));
  });
}

const ports = Array.from({ length: count }, (_, i) => first + i);
const answers = {};
let next = 0;
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (next < ports.length) {
      const localPort = ports[next++];
      answers[localPort] = await flowFrom(localPort);
    }
  }),
);
process.stdout.write(JSON.stringify(answers) + '\n');
