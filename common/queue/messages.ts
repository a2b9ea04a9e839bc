import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Publication } from './broker.ts';
import { type Topology, tierFor } from './topology.ts';

/** Every message here is JSON; a body that is not, or does not match its schema, parses to null. */
function parseJson<T>(schema: z.ZodType<T>, content: Buffer): T | null {
  try {
    const parsed = schema.safeParse(JSON.parse(content.toString('utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

const json = (body: unknown) => Buffer.from(JSON.stringify(body));

/**
 * A delivery on `<prefix>.deliveries` (and its retry tiers): which inbox row to push. The first
 * publish, made by the listener right after its commit, also carries the stored event body (the
 * E2E ciphertext, never a key) and the device's push address as of that commit, so the first
 * attempt needs no PostgreSQL read. Retries and the relay's sweep carry neither: the sender then
 * reads the inbox at push time, so an event acked or expired meanwhile is skipped.
 */
const delivery = z.object({
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

/**
 * What a message on a delivery shard carries: the deliveries a relay batch queued for the shard's
 * devices, `{"deliveries": [Delivery, …]}`, or one Delivery (a retry coming back from its delay
 * tier). Null when malformed.
 */
const shardMessage = z.union([
  z.object({ deliveries: z.array(delivery).min(1) }).transform((b) => b.deliveries),
  delivery.transform((d) => [d]),
]);

export function parseDeliveries(content: Buffer): Delivery[] | null {
  return parseJson(shardMessage, content);
}

/** A first delivery and the outbox row that listed its event. */
type Relayed = { delivery: Delivery; outboxId: string };

/** Deliveries in one message: at most this many, … */
const BATCH_MAX = 64;
/** … and about this many bytes (one larger delivery goes alone), which bounds a sender's prefetch in memory. */
const BATCH_BYTES = 256 * 1024;

/**
 * The first publish of relayed outbox rows: one message per shard for up to BATCH_MAX of its
 * deliveries, mandatory and persistent, its message id `<first event id>:<first row id>`. One
 * message instead of one per delivery is one quorum-queue write, delivery and ack for the batch.
 */
export function deliveryPublications(t: Topology, rows: Relayed[]): Publication[] {
  const byShard = new Map<string, Relayed[]>();
  for (const r of rows) {
    const q = t.deliveryQueue(r.delivery.device_id);
    const list = byShard.get(q);
    if (list) list.push(r);
    else byShard.set(q, [r]);
  }
  const out: Publication[] = [];
  for (const [queue, list] of byShard) {
    for (let at = 0; at < list.length; ) {
      const first = list[at] as Relayed;
      const parts: string[] = [];
      let bytes = 0;
      for (; at < list.length && parts.length < BATCH_MAX; at++) {
        const one = JSON.stringify(list[at]?.delivery);
        if (parts.length && bytes + one.length > BATCH_BYTES) break;
        parts.push(one);
        bytes += one.length;
      }
      out.push({
        exchange: '',
        routingKey: queue,
        content: Buffer.from(`{"deliveries":[${parts.join(',')}]}`),
        options: {
          persistent: true,
          mandatory: true,
          messageId: `${first.delivery.event_id}:${first.outboxId}`,
          contentType: 'application/json',
        },
      });
    }
  }
  return out;
}

/**
 * A delivery put back to wait (`<prefix>.retry.<ttl>ms`): the same body with `not_before`, in the
 * delay tier that dead-letters it into `deliveries` again at (or just before) that time; parsed by
 * parseDeliveries.
 */
export function retryPublication(t: Topology, d: Delivery, notBefore: number): Publication {
  return {
    exchange: '',
    routingKey: t.retryQueue(tierFor(t.tiers, notBefore - Date.now())),
    content: json({ ...d, not_before: notBefore }),
    options: { persistent: true, mandatory: true, messageId: randomUUID(), contentType: 'application/json' },
  };
}

/**
 * A dead delivery on `<prefix>.parking`, kept for operators (nothing consumes it): the delivery,
 * why it died (the sender's outcome) and when.
 */
const parkedDelivery = delivery.extend({
  /** The sender's outcome (sender/outcome.ts), in practice `{"kind": "dead", "reason"}`. */
  outcome: z.object({ kind: z.string(), reason: z.string().optional() }),
  parked_at: z.string(),
});
export type ParkedDelivery = z.infer<typeof parkedDelivery>;

export function parseParkedDelivery(content: Buffer): ParkedDelivery | null {
  return parseJson(parkedDelivery, content);
}

export function parkingPublication(
  t: Topology,
  d: Delivery,
  outcome: ParkedDelivery['outcome'],
): Publication {
  const parked: ParkedDelivery = { ...d, outcome, parked_at: new Date().toISOString() };
  return {
    exchange: '',
    routingKey: t.parking,
    content: json(parked),
    options: { persistent: true, mandatory: true, messageId: randomUUID(), contentType: 'application/json' },
  };
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
const liveSignal = z.object({
  devices: z.array(z.tuple([z.string(), z.number()])),
});
export type LiveSignal = z.infer<typeof liveSignal>;

export function parseLiveSignal(content: Buffer): LiveSignal | null {
  return parseJson(liveSignal, content);
}

/** The wake-up of the devices in `wakes` (device id → highest seq); the first device is the routing key. */
export function liveSignalPublication(t: Topology, wakes: Map<string, number>): Publication {
  const devices = [...wakes.keys()];
  const signal: LiveSignal = { devices: [...wakes] };
  return {
    exchange: t.live,
    routingKey: devices[0] ?? '',
    content: json(signal),
    options: { persistent: false, contentType: 'application/json', BCC: devices },
  };
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
const presenceChange = z.object({
  user_id: z.string(),
  username: z.string(),
  online: z.boolean(),
  since: z.string(),
});
export type PresenceChange = z.infer<typeof presenceChange>;

export function parsePresenceChange(content: Buffer): PresenceChange | null {
  return parseJson(presenceChange, content);
}

export function presencePublication(t: Topology, change: PresenceChange): Publication {
  return {
    exchange: t.presence,
    routingKey: change.username,
    content: json(change),
    options: { persistent: false, contentType: 'application/json' },
  };
}

/**
 * INVALIDATION CONTRACT (`<prefix>.invalidations`, a durable fanout exchange)
 *
 * A listener that changed a user's sessions or devices publishes ONE message, body JSON
 * `{"user_id"}`, non-persistent. Every listener's live queue is bound to the exchange (the
 * publisher's too), and each drops what it cached about that user on receipt. A listener that is
 * not subscribed may miss some, so it serves nothing from that cache meanwhile (AuthCache.setLive).
 */
const invalidation = z.object({ user_id: z.string() });
export type Invalidation = z.infer<typeof invalidation>;

export function parseInvalidation(content: Buffer): Invalidation | null {
  return parseJson(invalidation, content);
}

export function invalidationPublication(t: Topology, userId: string): Publication {
  const body: Invalidation = { user_id: userId };
  return {
    exchange: t.invalidations,
    routingKey: '',
    content: json(body),
    options: { persistent: false, contentType: 'application/json' },
  };
}
