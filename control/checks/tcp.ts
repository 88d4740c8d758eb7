import net from 'node:net';
import { defineCheckType } from './check-type.js';

/** A TCP connect within the timeout. */
export const tcp = defineCheckType({
  name: 'tcp',
  description: 'connect',
  options: {},
  probe: (spec) =>
    new Promise((resolve) => {
      const socket = net.connect({ host: spec.address, port: spec.port });
      const timer = setTimeout(() => done(`tcp connect timed out after ${spec.timeoutMs} ms`), spec.timeoutMs);
      const done = (reason: string | null) => {
        clearTimeout(timer);
        socket.destroy();
        resolve(reason);
      };
      socket.once('connect', () => done(null));
      socket.once('error', (error: NodeJS.ErrnoException) => done(`tcp connect: ${error.code ?? error.message}`));
    }),
});
