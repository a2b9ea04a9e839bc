import { randomUUID } from 'node:crypto';
import { type Envelope, openBox, sealFor } from './crypto.ts';
import { lookup } from './devices.ts';
import { getGroup } from './groups.ts';
import { ApiError } from './http.ts';
import { type Content, decodePayload, encodePayload, type FileRef } from './payload.ts';
import type { Session } from './session.ts';
import type { DeviceKey, DeviceMismatch, Edited, Event, Page, ReceiptType, Sent } from './types.ts';

/** A username, or a group. */
export type Target = string | { group: string };

export interface SendOptions {
  /** Attachments uploaded with `uploadFile`; their keys travel inside the ciphertext. */
  files?: FileRef[];
  /** Idempotency key; random when omitted. Reuse it to retry a send safely. */
  clientMessageId?: string;
}

/** An event with its ciphertext opened: `content` is null when there is none or it does not open. */
export type Received = Event & { content: Content | null };

const cacheKey = (target: Target) =>
  typeof target === 'string' ? `user:${target.toLowerCase()}` : `group:${target.group}`;

/**
 * Every device a message to `target` must be encrypted for: the recipients plus our own other
 * devices. Fetched from the directory on first use, then cached until the server says otherwise.
 */
async function recipientsOf(s: Session, target: Target, fresh = false): Promise<DeviceKey[]> {
  const cached = fresh ? undefined : s.recipients.get(cacheKey(target));
  if (cached) return cached;
  const { username, deviceId } = s.identity;
  const lists: DeviceKey[][] = [];
  if (typeof target === 'string') {
    lists.push((await lookup(s, username)).devices);
    if (target.toLowerCase() !== username) lists.push((await lookup(s, target)).devices);
  } else {
    lists.push(...(await getGroup(s, target.group)).members.map((m) => m.devices));
  }
  const byId = new Map<string, DeviceKey>();
  for (const d of lists.flat()) if (d.device_id !== deviceId) byId.set(d.device_id, d);
  const devices = [...byId.values()];
  s.recipients.set(cacheKey(target), devices);
  return devices;
}

/**
 * Encrypts for `devices` and posts; on 409 `device_mismatch` (a device was added or removed
 * since we looked) adopts the server's correction once and posts again. Returns the answer
 * and the device list that was accepted.
 */
async function postCovering<T>(
  s: Session,
  devices: DeviceKey[],
  plaintext: Uint8Array,
  post: (envelopes: Envelope[]) => Promise<T>,
): Promise<{ result: T; devices: DeviceKey[] }> {
  const { secret_key } = s.identity.keys;
  const seal = (list: DeviceKey[]) => list.map((d) => sealFor(plaintext, d, secret_key));
  try {
    return { result: await post(seal(devices)), devices };
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409 && err.error === 'device_mismatch')) throw err;
    const m = err.body as Partial<DeviceMismatch>;
    const extra = new Set(m.extra_devices ?? []);
    const next = new Map(devices.filter((d) => !extra.has(d.device_id)).map((d) => [d.device_id, d]));
    for (const d of m.missing_devices ?? [])
      next.set(d.device_id, { device_id: d.device_id, public_key: d.public_key });
    const corrected = [...next.values()];
    return { result: await post(seal(corrected)), devices: corrected };
  }
}

/** Sends text or bytes (and attachments) to a user or a group, end-to-end encrypted. */
export async function send(
  s: Session,
  target: Target,
  body: string | Uint8Array,
  opts: SendOptions = {},
): Promise<Sent> {
  const plaintext = encodePayload(body, opts.files);
  const devices = await recipientsOf(s, target);
  const dest = typeof target === 'string' ? { to: target } : { group_id: target.group };
  const client_message_id = opts.clientMessageId ?? randomUUID();
  const file_ids = opts.files?.map((f) => f.file_id);
  const sent = await postCovering(s, devices, plaintext, (envelopes) =>
    s.http.json<Sent>('POST', '/api/messages', {
      body: { ...dest, client_message_id, envelopes, ...(file_ids?.length && { file_ids }) },
    }),
  );
  s.recipients.set(cacheKey(target), sent.devices);
  return sent.result;
}

/**
 * Replaces the text of one of our messages. Without `target` the SDK learns the recipients
 * from the server's 409 answer (one extra round trip).
 */
export async function edit(
  s: Session,
  messageId: string,
  body: string | Uint8Array,
  opts: { target?: Target; files?: FileRef[] } = {},
): Promise<Edited> {
  const devices = opts.target ? await recipientsOf(s, opts.target) : [];
  const edited = await postCovering(s, devices, encodePayload(body, opts.files), (envelopes) =>
    s.http.json<Edited>('PUT', `/api/messages/${encodeURIComponent(messageId)}`, { body: { envelopes } }),
  );
  if (opts.target) s.recipients.set(cacheKey(opts.target), edited.devices);
  return edited.result;
}

export async function deleteMessage(s: Session, messageId: string): Promise<void> {
  await s.http.json('DELETE', `/api/messages/${encodeURIComponent(messageId)}`);
}

export async function sendReceipt(s: Session, messageId: string, type: ReceiptType): Promise<void> {
  await s.http.json('POST', `/api/messages/${encodeURIComponent(messageId)}/receipts`, { body: { type } });
}

/** Opens an event's envelope with this device's key. */
export function openEvent(s: Session, event: Event): Received {
  if (!event.nonce || !event.ciphertext) return { ...event, content: null };
  const opened = openBox(
    { nonce: event.nonce, ciphertext: event.ciphertext, senderPublicKey: event.from.public_key },
    s.identity.keys.secret_key,
  );
  return { ...event, content: opened ? decodePayload(opened) : null };
}

/** One page of this device's undelivered events after `after`, decrypted. */
export async function pull(
  s: Session,
  opts: { after?: number; limit?: number } = {},
): Promise<Page<Received>> {
  const page = await s.http.json<Page>('GET', '/api/messages', {
    query: { after: opts.after ?? 0, limit: opts.limit },
  });
  return { ...page, events: page.events.map((e) => openEvent(s, e)) };
}

/** Pages through everything undelivered; acknowledge with `ack(page.next_after)` as you go. */
export async function* pages(
  s: Session,
  opts: { after?: number; limit?: number } = {},
): AsyncGenerator<Page<Received>> {
  let after = opts.after ?? 0;
  for (;;) {
    const page = await pull(s, { ...opts, after });
    yield page;
    if (!page.has_more) return;
    after = page.next_after;
  }
}

/** Removes this device's events up to `upTo`: they are neither pushed nor returned again. */
export async function ack(s: Session, upTo: number): Promise<void> {
  await s.http.json('POST', '/api/messages/ack', { body: { up_to: upTo } });
}
