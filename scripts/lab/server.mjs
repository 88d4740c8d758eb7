// A backend's test service: answers each TCP line and each UDP datagram with its
// own name, so clients can tell which backend served them, and a DNS query with a
// DNS answer (the address DNS_ANSWER), for UDP health checks. Prints "ready" once
// listening. UDP binds to each VIP and to the host's own addresses: a wildcard
// socket would answer from the address the route picks, not the one the client asked.
// SIGUSR1 stops the UDP service alone (prints "udp stopped"), SIGUSR2 starts it
// again (prints "udp ready"); TCP answers throughout.
// Usage: node server.mjs NAME TCP_PORT UDP_PORT VIP...
import dgram from 'node:dgram';
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import readline from 'node:readline';

const [name, tcpPort, udpPort, ...vips] = process.argv.slice(2);
/** The A record every DNS query is answered with. */
const DNS_ANSWER = [198, 18, 0, 53];

const tcp = net.createServer((socket) => {
  // A client that resets its connection must not take the service down: both the
  // socket and the line reader on it report the error.
  socket.on('error', () => {});
  const lines = readline.createInterface({ input: socket });
  lines.on('error', () => {});
  lines.on('line', (line) => socket.write(`${name} ${line}\n`));
});

/** The end of a DNS query's question (after QNAME, QTYPE, QCLASS), or -1 for a datagram that is not one query. */
function questionEnd(msg) {
  if (msg.length < 17 || msg[2] & 0x80 || msg.readUInt16BE(4) !== 1) return -1;
  let at = 12;
  while (at < msg.length && msg[at] !== 0) at += msg[at] + 1;
  return at + 5 <= msg.length ? at + 5 : -1;
}

/** A DNS answer to `query` (ID and question copied) with one A record, DNS_ANSWER, for the name asked. */
function dnsAnswer(query, end) {
  const header = Buffer.from([0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
  query.copy(header, 0, 0, 2);
  const record = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, ...DNS_ANSWER]);
  return Buffer.concat([header, query.subarray(12, end), record]);
}

const udpAddresses = [
  ...vips,
  ...Object.values(networkInterfaces())
    .flat()
    .filter((a) => !a.internal && !a.address.startsWith('fe80:'))
    .map((a) => a.address),
];
let udpSockets = [];

/** Binds the UDP service on every address; `listening` once they all listen. */
function startUdp(listening) {
  let pending = udpAddresses.length;
  udpSockets = udpAddresses.map((address) => {
    const udp = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
    udp.on('message', (msg, peer) => {
      const end = questionEnd(msg);
      udp.send(end < 0 ? `${name} ${msg}` : dnsAnswer(msg, end), peer.port, peer.address);
    });
    udp.bind({ port: Number(udpPort), address }, () => --pending === 0 && listening());
    return udp;
  });
}

function stopUdp(closed) {
  let pending = udpSockets.length;
  if (pending === 0) closed();
  for (const udp of udpSockets.splice(0)) udp.close(() => --pending === 0 && closed());
}

let pending = 2;
const listening = () => {
  if (--pending === 0) process.stdout.write('ready\n');
};
tcp.listen({ port: Number(tcpPort), host: '::', ipv6Only: false }, listening);
startUdp(listening);
process.on('SIGUSR1', () => stopUdp(() => process.stdout.write('udp stopped\n')));
process.on('SIGUSR2', () => startUdp(() => process.stdout.write('udp ready\n')));
process.on('SIGTERM', () => process.exit(0));
