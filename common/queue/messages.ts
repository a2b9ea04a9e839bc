import { z } from 'zod';

/**
 * A delivery on `<prefix>.deliveries` (and its retry tiers): which inbox row to push. The first
 * publish, made by the listener right after its commit, also carries the stored event body (the
 * E2E ciphertext, never a key) and the device's push address as of that commit, so the first
 * attempt needs no PostgreSQL read. Retries and the relay's sweep carry neither: the sender then
 * reads the inbox at push time, so an event acked or expired meanwhile is skipped.
 */
export const delivery = z.object({
  device_id: z.string(),
  seq: z.number().int(),
  event_id: z.string(),
  /** X-Request-Id of the listener request that queued it, for logs end to end. */
  request_id: z.string().nullable(),
  /** When the outbox row was committed: start of the retry window and of push latency. */
  created_at: z.string(),
  /** Attempts made so far (0 on the first publish). */
  attempt: z.number().int().min(0),
  /** Times it found its origin busy and was put back without an attempt. */
  deferrals: z.number().int().min(0).optional(),
  /** Not to be attempted before this time (ms since epoch); set on retries. */
  not_before: z.number().optional(),
  /** The stored event JSON, on the first publish only. */
  body: z.string().optional(),
  /** The push address as of the commit (null: none), on the first publish only. */
  address: z.string().nullable().optional(),
});
export type Delivery = z.infer<typeof delivery>;

export function parseDelivery(content: Buffer): Delivery | null {
  try {
    const parsed = delivery.safeParse(JSON.parse(content.toString('utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * LIVE STREAM CONTRACT (`<prefix>.live`, a durable topic exchange)
 *
 * For each batch of outbox rows it relays, a listener publishes ONE message:
 *   routing keys: the device ids of the batch (UUIDs, so never a `.`): the first as the routing
 *   key, all of them in the `BCC` header (RabbitMQ's sender-selected distribution: the message
 *   reaches every queue bound to any of them once, and the header is not delivered);
 *   body: JSON `{"devices": [["<uuid>", <highest seq>], …]}`;
 *   non-persistent, no mandatory flag: when no stream is bound it is simply dropped.
 * A stream consumer binds its own exclusive auto-delete queue with the device ids it serves
 * (or `#`) and treats a message only as a wake-up for the listed devices it serves: it re-reads
 * their inbox after the last seq it sent. The signal is best effort — it may be lost (broker
 * restart, consumer reconnecting), duplicated, reordered, or arrive for a seq already sent or
 * acked — so a stream must also re-read the inbox when it (re)subscribes, and never trust `seq`
 * as data.
 */
export interface LiveSignal {
  devices: [deviceId: string, seq: number][];
}

/** The device ids a wake-up names; [] when it is not one. */
export function wokenDevices(content: Buffer): string[] {
  try {
    const body = JSON.parse(content.toString()) as { devices?: unknown };
    if (!Array.isArray(body.devices)) return [];
    return body.devices.flatMap((d: unknown) => (Array.isArray(d) && typeof d[0] === 'string' ? [d[0]] : []));
  } catch {
    return [];
  }
}

/**
 * PRESENCE CONTRACT (`<prefix>.presence`, a durable topic exchange)
 *
 * The listener that settles a user's online/offline transition in PostgreSQL (user_presence, under
 * a per-user lock: exactly one listener per transition) publishes ONE message:
 *   routing key: the username (immutable; `[a-z0-9_.-]`, so never a wildcard);
 *   body: JSON `{"user_id", "username", "online": boolean, "since": RFC 3339}`;
 *   non-persistent, no mandatory flag: when no listener watches the user it is dropped.
 * A listener binds its live queue with the usernames its sockets subscribed to and re-checks the
 * contacts rule before it turns a message into frames. Like wake-ups it is best effort (lost while
 * a consumer reconnects, possibly reordered between publishers): `since` orders a user's
 * transitions, and a listener re-reads the state of every subscription when it reconnects.
 */
export const presenceChange = z.object({
  user_id: z.string(),
  username: z.string(),
  online: z.boolean(),
  since: z.string(),
});
export type PresenceChange = z.infer<typeof presenceChange>;

export function parsePresenceChange(content: Buffer): PresenceChange | null {
  try {
    const parsed = presenceChange.safeParse(JSON.parse(content.toString('utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
