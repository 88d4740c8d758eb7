// A backend's test service: answers each TCP line and each UDP datagram with its
// own name, so clients can tell which backend served them. Prints "ready" once
// listening. UDP binds to each VIP: a wildcard socket would answer from the
// address the route picks, not the VIP the client asked.
// Usage: node server.mjs NAME TCP_PORT UDP_PORT VIP...
import dgram from 'node:dgram';
import net from 'node:net';
import readline from 'node:readline';

const [name, tcpPort, udpPort, ...vips] = process.argv.slice(2);

const tcp = net.createServer((socket) => {
  // A client that resets its connection must not take the service down: both the
  // socket and the line reader on it report the error.
  socket.on('error', () => {});
  const lines = readline.createInterface({ input: socket });
  lines.on('error', () => {});
  lines.on('line', (line) => socket.write(`${name} ${line}\n`));
});

let pending = 1 + vips.length;
const listening = () => {
  if (--pending === 0) process.stdout.write('ready\n');
};
tcp.listen({ port: Number(tcpPort), host: '::', ipv6Only: false }, listening);
for (const vip of vips) {
  const udp = dgram.createSocket(net.isIPv6(vip) ? 'udp6' : 'udp4');
  udp.on('message', (msg, peer) => udp.send(`${name} ${msg}`, peer.port, peer.address));
  udp.bind({ port: Number(udpPort), address: vip }, listening);
}
process.on('SIGTERM', () => process.exit(0));
