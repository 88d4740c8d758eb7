import net from 'node:net';
import { defineCheckType, type ProbeOutcome, socketErrorReason } from './check-type.js';

/** A TCP connect within the timeout. */
export const tcp = defineCheckType({
  name: 'tcp',
  description: 'connect',
  protocol: 'tcp',
  options: {},
  probe: (spec) =>
    new Promise((resolve) => {
      const socket = net.connect({
        host: spec.address,
        port: spec.port,
        localPort: spec.localPort,
        localAddress: spec.localAddress ?? undefined,
      });
      const timer = setTimeout(() => done(`no answer in ${spec.timeoutMs} ms`), spec.timeoutMs);
      const done = (reason: ProbeOutcome) => {
        clearTimeout(timer);
        // RST, not FIN: a probe port's 4-tuple must not wait in TIME_WAIT for the next probe.
        if (socket.readyState === 'open') socket.resetAndDestroy();
        else socket.destroy();
        resolve(reason);
      };
      socket.once('connect', () => done(null));
      socket.once('error', (error: NodeJS.ErrnoException) => done(socketErrorReason(spec, 'tcp connect', error)));
    }),
});
