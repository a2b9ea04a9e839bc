import nacl from 'tweetnacl';
import { unb64 } from './crypto.ts';
import type { Event } from './types.ts';

export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

export type HeaderBag = Headers | Record<string, string | string[] | undefined>;

export interface VerifyOptions {
  /** Largest accepted distance between `webhook-timestamp` and now, in seconds (default 300). */
  toleranceSec?: number;
  /** Now, in unix seconds (tests). */
  now?: number;
}

function header(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const bag = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(bag).find((k) => k.toLowerCase() === name);
  const v = key === undefined ? undefined : bag[key];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Verifies a push as Standard Webhooks with asymmetric signatures: `webhook-signature` holds
 * space-separated `v1a,<base64 ed25519 signature>` entries over `{id}.{timestamp}.{body}`;
 * one valid entry is enough (the server may be rotating keys), other versions are ignored.
 * A timestamp outside the tolerance is rejected (replays). `rawBody` must be the exact bytes
 * received — re-serialised JSON does not verify. Returns the event; throws
 * WebhookVerificationError otherwise.
 */
export function verifyPush(
  headers: HeaderBag,
  rawBody: string | Uint8Array,
  serverKey: string | Uint8Array,
  opts: VerifyOptions = {},
): Event {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) throw new WebhookVerificationError('missing webhook headers');
  if (!/^\d{1,12}$/.test(timestamp)) throw new WebhookVerificationError('malformed webhook-timestamp');
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(timestamp)) > (opts.toleranceSec ?? 300)) {
    throw new WebhookVerificationError('webhook-timestamp outside the tolerance');
  }
  const key = typeof serverKey === 'string' ? unb64(serverKey) : serverKey;
  if (key.length !== nacl.sign.publicKeyLength) throw new WebhookVerificationError('malformed server key');
  const body = typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : Buffer.from(rawBody);
  const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`, 'utf8'), body]);
  const valid = signatures.split(' ').some((entry) => {
    const comma = entry.indexOf(',');
    if (entry.slice(0, comma) !== 'v1a') return false;
    const sig = unb64(entry.slice(comma + 1));
    return sig.length === nacl.sign.signatureLength && nacl.sign.detached.verify(signed, sig, key);
  });
  if (!valid) throw new WebhookVerificationError('no valid signature');
  let event: Event;
  try {
    event = JSON.parse(body.toString('utf8')) as Event;
  } catch {
    throw new WebhookVerificationError('body is not JSON');
  }
  if (event?.id !== id) throw new WebhookVerificationError('webhook-id does not match the event');
  return event;
}

/** Signs like the server does; for tests and local tools that emulate pushes. */
export function signPush(id: string, timestamp: number, body: string, secretKey: Uint8Array): string {
  const sig = nacl.sign.detached(Buffer.from(`${id}.${timestamp}.${body}`, 'utf8'), secretKey);
  return `v1a,${Buffer.from(sig).toString('base64')}`;
}
