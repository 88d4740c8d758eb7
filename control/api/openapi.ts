/** The OpenAPI document's frame: info, tags and security; the routes' schemas fill in the operations. */
import type { SwaggerOptions } from '@fastify/swagger';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';

export const TAGS = {
  vips: 'VIPs and their backends: the desired state',
  status: "The daemon's state and traffic",
  monitoring: 'Prometheus metrics and the live event stream',
  probes: 'Liveness and readiness, without a token',
  trace: 'Where a flow or a frame goes: the balancer program run on the live maps, which it leaves unchanged',
} as const;
export type Tag = keyof typeof TAGS;

export function openapiOptions(version: string, token: boolean): SwaggerOptions {
  return {
    openapi: {
      info: {
        title: 'xlb',
        description:
          'XDP layer-4 load balancer control API. Every failed request answers `{"error": {"code", "message", "details"?}}`; ' +
          'the codes are listed in the `code` enum of each error response.',
        version,
      },
      tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: token ? [{ bearer: [] }] : [],
    },
    transform: jsonSchemaTransform,
  };
}
