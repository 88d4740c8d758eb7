/**
 * GET /ui: a one-page dashboard served by the daemon (ui/: the page, its script and
 * style). It reads the REST API and /v1/events with the operator's token, which the
 * page asks for; these files themselves need none. Plain HTML and JavaScript: nothing
 * to build.
 */
import type { FastifyPluginAsync } from 'fastify';
import { PAGE } from './ui/page.js';
import { APP } from './ui/script.js';
import { STYLE } from './ui/style.js';

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'";

export const uiRoute: FastifyPluginAsync = async (app) => {
  const serve = (url: string, type: string, body: string) =>
    app.get(url, { schema: { hide: true } }, async (_, reply) =>
      reply.header('content-type', `${type}; charset=utf-8`).header('content-security-policy', CSP).send(body),
    );
  serve('/ui', 'text/html', PAGE);
  serve('/ui/app.js', 'text/javascript', APP);
  serve('/ui/style.css', 'text/css', STYLE);
};
