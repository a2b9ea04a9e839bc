import { z } from 'zod';
import * as s from '../http/schemas.ts';

/** Largest client frame accepted; bigger ones close the socket with 1009 (ws enforces it while reading). */
export const MAX_CLIENT_FRAME_BYTES = 64 * 1024;

/** Usernames one presence.subscribe frame may name (docs/API.md#presence). */
const MAX_PRESENCE_SUBSCRIPTION = 500;

const clientFrame = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('auth'), token: z.string().min(1).max(512) }),
  z.strictObject({ type: z.literal('ack'), up_to: s.seq }),
  z.strictObject({
    type: z.literal('presence.subscribe'),
    users: z.array(s.username).max(MAX_PRESENCE_SUBSCRIPTION),
  }),
]);
type ClientFrame = z.output<typeof clientFrame>;

/** Close codes the server uses (1000-1015 are RFC 6455; 4000-4999 are ours). */
export const CLOSE = {
  goingAway: 1001,
  unsupportedData: 1003,
  policy: 1008,
  internal: 1011,
  tryAgainLater: 1013,
  unauthorized: 4401,
  tooSlow: 4008,
} as const;

export type ParsedFrame = { ok: true; frame: ClientFrame } | { ok: false; code: number; reason: string };

/** A client frame, or why the socket must be closed. Reasons stay well under the 123-byte limit. */
export function parseClientFrame(data: Buffer, isBinary: boolean): ParsedFrame {
  if (isBinary) return { ok: false, code: CLOSE.unsupportedData, reason: 'binary frames are not accepted' };
  let json: unknown;
  try {
    json = JSON.parse(data.toString('utf8'));
  } catch {
    return { ok: false, code: CLOSE.policy, reason: 'frame is not valid JSON' };
  }
  const parsed = clientFrame.safeParse(json);
  if (parsed.success) return { ok: true, frame: parsed.data };
  const issue = parsed.error.issues[0];
  const where =
    issue?.code === 'unrecognized_keys'
      ? `unknown field ${issue.keys.join(', ')}`
      : issue?.path.length
        ? issue.path.join('.')
        : 'type';
  // Close reasons are capped at 123 bytes and field names come from the client: printable ASCII only.
  const reason = `invalid frame: ${where}`.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);
  return { ok: false, code: CLOSE.policy, reason };
}

/** A server frame carrying one stored event, spliced in as stored (never re-serialised). */
export function eventFrame(body: string): string {
  return `{"type":"event","event":${body}}`;
}
