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
import { uiFileSchema } from './text-schemas.js';

// No inline script or style, and no framing (a page that frames the dashboard could trick clicks on its controls).
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'";

export const uiRoute: FastifyPluginAsync = async (app) => {
  const serve = (url: string, type: string, body: string, schema: ReturnType<typeof uiFileSchema>) =>
    app.get(url, { schema }, async (_, reply) =>
      reply.header('content-type', `${type}; charset=utf-8`).header('content-security-policy', CSP).send(body),
    );
  serve('/ui', 'text/html', PAGE, uiFileSchema('getUi', 'The dashboard', 'text/html', '<!doctype html>\n<html lang="en">…</html>'));
  serve('/ui/app.js', 'text/javascript', APP, uiFileSchema('getUiScript', "The dashboard's script", 'text/javascript', "'use strict';\n…"));
  serve('/ui/style.css', 'text/css', STYLE, uiFileSchema('getUiStyle', "The dashboard's style", 'text/css', 'body { … }'));
};
