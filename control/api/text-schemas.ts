/** The routes that answer text rather than JSON, as the OpenAPI document shows them. */
import { z } from 'zod';
import { errorsOf } from './schemas.js';

const sample = `# HELP xlb_up 1 when the program is attached and the state applied
# TYPE xlb_up gauge
xlb_up 1
# HELP xlb_flow_table_flows Flows the connection table holds, by state (counted in up to 65,536 buckets, scaled to the whole table)
# TYPE xlb_flow_table_flows gauge
xlb_flow_table_flows{state="new"} 212
xlb_flow_table_flows{state="established"} 12861
xlb_flow_table_flows{state="closing"} 136
# HELP xlb_build_info Always 1: the labels say which xlb and which Node.js run
# TYPE xlb_build_info gauge
xlb_build_info{version="0.1.0",nodejs_version="v20.19.4"} 1
`;

export const metricsSchema = {
  operationId: 'getMetrics',
  tags: ['monitoring'],
  summary: 'Prometheus metrics',
  description:
    'Prometheus text exposition format, read from the kernel maps at scrape time. ' +
    'With a token configured it needs `Authorization: Bearer <token>` like /v1 (401 without).',
  response: {
    200: {
      description: 'The metrics',
      content: { 'text/plain': { schema: z.string().meta({ example: sample }) } },
    },
    ...errorsOf(401, 500),
  },
};

/** One file of the dashboard: open, since the page holds no data and calls the API with the token the operator types. */
export const uiFileSchema = (operationId: string, summary: string, type: string, example: string) => ({
  operationId,
  tags: ['monitoring'],
  summary,
  description: 'Open: the page holds no data; it asks for the token when one is set and calls the API with it.',
  security: [],
  response: {
    200: { description: summary, content: { [type]: { schema: z.string().meta({ example }) } } },
  },
});
