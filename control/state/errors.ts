/** Errors the control plane reports to API clients: an HTTP status, a stable code, details. */
export class XlbError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = undefined,
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new XlbError(404, 'not_found', `${what} does not exist`);
export const conflict = (message: string, details?: unknown) => new XlbError(409, 'conflict', message, details);
export const invalid = (message: string, details?: unknown) => new XlbError(400, 'invalid_request', message, details);
