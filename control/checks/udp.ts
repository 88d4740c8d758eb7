import dgram from 'node:dgram';
import net from 'node:net';
import { z } from 'zod';
import { defineCheckType, type ProbeOutcome, socketErrorReason } from './check-type.js';

/** The most a probe sends or expects: one datagram that fits a 1500-byte MTU with IPv6, UDP and IPIP headers to spare. */
const UDP_PAYLOAD_MAX = 1400;
/** How much of a reply that lacked the expected bytes its failure reason shows. */
const SHOWN_REPLY_BYTES = 16;

const sizeProblem = (bytes: number) =>
  bytes === 0 ? 'must not be empty' : bytes > UDP_PAYLOAD_MAX ? `${bytes} bytes: at most ${UDP_PAYLOAD_MAX} fit one probe datagram` : null;

/** Why `text` has no UTF-8 bytes of its own (a lone surrogate, which UTF-8 would send as U+FFFD), or null. */
function surrogateProblem(text: string): string | null {
  const at = text.search(/\p{Surrogate}/u);
  if (at < 0) return null;
  const unit = text.charCodeAt(at).toString(16).toUpperCase();
  return `U+${unit} at position ${at} is a lone surrogate: not well-formed UTF-16, so it has no UTF-8 bytes (give bytes as hex instead)`;
}

const textPayload = z.string().superRefine((text, ctx) => {
  const problem = surrogateProblem(text) ?? sizeProblem(Buffer.byteLength(text));
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** Why `hex` cannot be a payload, or null when it can. */
function hexProblem(hex: string): string | null {
  const bad = hex.search(/[^0-9A-Fa-f]/);
  if (bad >= 0) return `${JSON.stringify(hex[bad])} at position ${bad} is not a hex digit`;
  if (hex.length % 2) return `${hex.length} hex digits: a byte is two, so the count must be even`;
  return sizeProblem(hex.length / 2);
}

const hexPayload = z.string().superRefine((hex, ctx) => {
  const problem = hexProblem(hex);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** The bytes of a payload given as text (UTF-8) or as hex, whichever is set. */
const bytesOf = (text: string | undefined, hex: string | undefined) =>
  hex !== undefined ? Buffer.from(hex, 'hex') : text !== undefined ? Buffer.from(text) : undefined;

const shown = (reply: Buffer) => reply.subarray(0, SHOWN_REPLY_BYTES).toString('hex') + (reply.length > SHOWN_REPLY_BYTES ? '…' : '');

/**
 * A datagram to the target, healthy on a reply within the timeout (one containing
 * `expect` when set). The socket is connected, so only the target's own address and
 * port can answer, and an ICMP port unreachable fails the check at once.
 */
export const udp = defineCheckType({
  name: 'udp',
  description: 'send a datagram and expect a reply',
  protocol: 'udp',
  options: {
    send: textPayload.optional().describe(`Payload as text (UTF-8), at most ${UDP_PAYLOAD_MAX} bytes; this or its hex form`),
    sendHex: hexPayload
      .optional()
      .describe(`Payload as hex digits (e.g. a DNS query), at most ${UDP_PAYLOAD_MAX} bytes; this or its text form`),
    expect: textPayload.optional().describe('Text the reply must contain; without it or its hex form any reply is healthy'),
    expectHex: hexPayload.optional().describe('Bytes, as hex digits, the reply must contain; this or its text form'),
  },
  optionsProblem: (check) => {
    if (check.send === undefined && check.sendHex === undefined)
      return { option: 'send', message: 'a udp check needs a payload: send (text) or sendHex' };
    if (check.send !== undefined && check.sendHex !== undefined)
      return { option: 'sendHex', message: 'give the payload as send (text) or sendHex, not both' };
    if (check.expect !== undefined && check.expectHex !== undefined)
      return { option: 'expectHex', message: 'give the expected bytes as expect (text) or expectHex, not both' };
    return null;
  },
  probe: (spec) =>
    new Promise((resolve) => {
      const payload = bytesOf(spec.send, spec.sendHex) ?? Buffer.alloc(0);
      const expected = bytesOf(spec.expect, spec.expectHex);
      const socket = dgram.createSocket({ type: net.isIPv6(spec.address) ? 'udp6' : 'udp4', reuseAddr: true });
      const timer = setTimeout(() => done(`no answer in ${spec.timeoutMs} ms`), spec.timeoutMs);
      let finished = false;
      const done = (reason: ProbeOutcome) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        socket.close();
        resolve(reason);
      };
      // A connected UDP socket hears an ICMP port unreachable as ECONNREFUSED.
      const fail = (error: NodeJS.ErrnoException) =>
        done(error.code === 'ECONNREFUSED' ? 'port unreachable' : socketErrorReason(spec, 'udp', error));
      socket.on('error', fail);
      socket.on('message', (reply) =>
        done(
          !expected || reply.includes(expected)
            ? null
            : `reply did not contain the expected bytes (got ${reply.length} bytes: ${shown(reply)})`,
        ),
      );
      const connect = () => socket.connect(spec.port, spec.address, () => socket.send(payload, (error) => error && fail(error)));
      if (spec.localPort === undefined) connect();
      else socket.bind({ port: spec.localPort, address: spec.localAddress ?? undefined }, connect);
    }),
});
