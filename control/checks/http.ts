import http from 'node:http';
import { z } from 'zod';
import { HTTP_PATH_MAX, httpPathProblem } from './http-path.js';
import { defineCheckType, type ProbeOutcome, socketErrorReason } from './check-type.js';

const httpPathSchema = z.string().superRefine((path, ctx) => {
  const problem = httpPathProblem(path);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** An HTTP GET within the timeout, answered with the expected status. */
export const httpCheck = defineCheckType({
  name: 'http',
  description: 'GET and expect a status',
  protocol: 'tcp',
  options: {
    path: httpPathSchema
      .default('/')
      .describe(
        `HTTP path and optional query: printable ASCII as RFC 3986 allows (percent-encode the rest), at most ${HTTP_PATH_MAX} characters`,
      ),
    expectStatus: z.number().int().min(100).max(599).default(200).describe('HTTP status that means healthy'),
  },
  probe: (spec) =>
    new Promise((resolve) => {
      let request: http.ClientRequest;
      const options = {
        host: spec.address,
        port: spec.port,
        localPort: spec.localPort,
        localAddress: spec.localAddress ?? undefined,
        path: spec.path,
        agent: false,
      };
      // The whole exchange, not the socket's idle time: a backend trickling bytes must not hold the check.
      const timer = setTimeout(() => finish(`no answer in ${spec.timeoutMs} ms`), spec.timeoutMs);
      let finished = false;
      const finish = (reason: ProbeOutcome) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        resolve(reason);
        // RST, not FIN: a probe port's 4-tuple must not wait in TIME_WAIT for the next probe.
        if (request.socket?.readyState === 'open') request.socket.resetAndDestroy();
        request.destroy();
      };
      try {
        request = http.get(options, (response) => {
          response.resume();
          finish(response.statusCode === spec.expectStatus ? null : `http status ${response.statusCode}, expected ${spec.expectStatus}`);
        });
      } catch (error) {
        // The client refuses some requests outright (ERR_UNESCAPED_CHARACTERS for a path with a space).
        clearTimeout(timer);
        resolve(`http: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
        return;
      }
      request.once('error', (error: NodeJS.ErrnoException) => finish(socketErrorReason(spec, 'http', error)));
    }),
});
