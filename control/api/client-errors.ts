/**
 * The answer to a request Node's HTTP parser refuses before fastify sees it (a malformed
 * request line, headers too large, too slow): the API's error shape, as fastify's
 * default handler would answer it otherwise.
 */
import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyServerOptions } from 'fastify';
import { errorBody } from './schemas.js';

function answerOf(code: string | undefined): { status: number; message: string } {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, message: 'the request took too long to arrive' };
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, message: 'the request headers are too large' };
  return { status: 400, message: 'the request is not valid HTTP/1.1' };
}

export const clientErrorHandler: NonNullable<FastifyServerOptions['clientErrorHandler']> = (error, socket: Socket) => {
  // A reset connection has nobody to answer.
  if ((error as NodeJS.ErrnoException).code === 'ECONNRESET' || socket.destroyed) return;
  // Bytes after a request still being answered (a body the request did not declare): that answer
  // is the client's, and an error written before it would say a change that was made was refused.
  const answering = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (answering && !answering.writableFinished) {
    answering.shouldKeepAlive = false;
    answering.once('close', () => socket.destroy());
    return;
  }
  const { status, message } = answerOf((error as NodeJS.ErrnoException).code);
  const body = JSON.stringify(errorBody('bad_request', message));
  if (socket.writable) {
    const head = [
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Content-Type: application/json',
    ];
    socket.write(`${[...head, 'Connection: close'].join('\r\n')}\r\n\r\n${body}`);
  }
  socket.destroy(error);
};
