import { z } from 'zod';

/** Canonical base64, as the OpenAPI document states it… */
const BASE64 = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$';
/**
 * …and as it is checked: the alphabet with at most two `=` at the end, in a string a multiple of
 * 4 long. The same set at half the cost, and every envelope's ciphertext goes through it.
 */
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decoded size of a canonical base64 string, without decoding it. */
function base64Size(s: string): number {
  return (s.length / 4) * 3 - (s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0);
}

/** Standard base64 whose decoded size is exactly `bytes`, or within [min, max]. */
export function base64Bytes(opts: { exact: number } | { min: number; max: number }) {
  const [min, max] = 'exact' in opts ? [opts.exact, opts.exact] : [opts.min, opts.max];
  const desc = min === max ? `${min} bytes` : `${min}..${max} bytes`;
  return z
    .string()
    .max(Math.ceil(max / 3) * 4, `must decode to ${desc}`)
    .refine((s) => s.length % 4 === 0 && BASE64_CHARS.test(s), 'must be standard base64')
    .refine((s) => {
      const n = base64Size(s);
      return n >= min && n <= max;
    }, `must decode to ${desc}`)
    .meta({ contentEncoding: 'base64', pattern: BASE64, description: `base64, ${desc}` });
}

export const publicKey = base64Bytes({ exact: 32 });
export const id = z.uuid().meta({ description: 'opaque id' });

const ISSUED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/**
 * An id a client names in a path or body. Ids are opaque strings (docs/API.md, conventions), so
 * any string is accepted; one that is not of the shape this server issues names nothing of ours
 * and becomes `null`, which the handler answers as it answers an unknown id (404), never 400.
 * Only ids of that shape reach the database (whose uuid columns would reject the rest).
 */
export const ref = z
  .string()
  .transform((v): string | null => (ISSUED.test(v) ? v : null))
  .meta({ description: 'opaque id' });
/** An envelope's `device_id`: any string; one that names no expected device is `extra_devices`. */
export const deviceRef = z.string().meta({ description: 'opaque id' });
export const username = z
  .string()
  .transform((s) => s.toLowerCase())
  .pipe(z.string().regex(/^[a-z0-9_.-]{3,32}$/, '3-32 of [a-z0-9_.-]'));
export const password = z.string().min(8).max(256);
export const displayName = z.string().trim().min(1).max(64);
export const deviceName = z.string().trim().min(1).max(64);
export const phoneNumber = z.string().regex(/^\+[1-9]\d{1,14}$/, 'E.164, e.g. +15551234567');
export const httpUrl = z
  .url({ protocol: /^https?$/ })
  .max(2048)
  .meta({ description: 'http(s) URL where pushes are POSTed' });
/** A non-negative integer in a query string (cursor, seq). */
export const seqParam = z
  .string()
  .regex(/^\d{1,15}$/, 'a non-negative integer')
  .transform(Number);
export const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const timestamp = z.iso.datetime();

export const error = z
  .object({ error: z.string(), message: z.string(), details: z.unknown().optional() })
  .meta({ id: 'Error' });
/** 409 `device_mismatch`: the envelopes did not cover exactly the devices the server expected. */
export const deviceMismatch = z
  .object({
    error: z.literal('device_mismatch'),
    message: z.string(),
    missing_devices: z.array(z.object({ user_id: id, device_id: id, public_key: z.string() })),
    extra_devices: z.array(id),
  })
  .meta({ id: 'DeviceMismatch' });
