/** The API at the raw socket, where what a client sends is not what inject() can build. */
import { connect } from 'node:net';
import { afterEach, expect, test } from 'vitest';
import { vipPath } from '../../control/cli/client.js';
import { type ModelDaemon, startModelDaemon } from '../lib/model-daemon.js';

let d: ModelDaemon;
afterEach(async () => d?.close());

/** Everything the server sends back on one connection, until it closes it. */
function exchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(bytes));
    let text = '';
    socket.on('data', (chunk) => (text += String(chunk)));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

test('bytes after a change that is being answered do not turn its answer into an error', async () => {
  d = await startModelDaemon();
  const VIP = vipPath('tcp', '198.19.0.1', 80);
  expect((await d.app.inject({ method: 'PUT', url: VIP, payload: { forwarding: 'dsr' } })).statusCode).toBe(201);
  await d.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = d.app.server.address() as { port: number };

  // A DELETE with a body it does not declare: the body parses as a broken next request while the DELETE is applied.
  const answer = await exchange(port, `DELETE ${VIP} HTTP/1.1\r\nHost: lb\r\n\r\n{"forwarding":"dsr"}`);
  expect(answer).toMatch(/^HTTP\/1\.1 204 /);
  expect(answer).not.toMatch(/HTTP\/1\.1 400/);
  expect(d.controller.vips()).toEqual([]);
});
