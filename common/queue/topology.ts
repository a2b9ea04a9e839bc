import type { Channel, Options } from 'amqplib';
import type { Config } from '../config.ts';

/**
 * Broker topology, declared by every process on every (re)connect; declarations are idempotent.
 *
 * - `<prefix>.deliveries` (and `<prefix>.deliveries.<n>` for n = 1 … AMQP_DELIVERY_SHARDS - 1):
 *   the (device, event) pairs to push, a relay batch's per message (see deliveryPublications);
 *   a device's first publishes always go to the same
 *   shard (a hash of its id), so one busy queue leader never carries the whole cluster's pushes.
 *   Sender workers consume every shard.
 * - `<prefix>.retry.<ttl>ms`: delay tiers. Each has a queue-wide TTL and dead-letters back into
 *   `deliveries` (the first shard: retries are few), so every message in a tier waits the same time and the head never blocks a
 *   shorter-lived message behind it (the problem of per-message TTL on one queue). A delay that
 *   falls between tiers goes through the largest tier below it; the message carries its
 *   `not_before` and the sender parks it again for the remainder when it comes back early.
 *   The TTL is part of the name, so processes configured with other delays never clash.
 * - `<prefix>.parking`: dead deliveries (retry window exhausted, address refused), kept for
 *   operators; nothing consumes it. The event itself stays in the inbox for pull.
 * - `<prefix>.live`: topic exchange, see the LIVE STREAM CONTRACT in ./messages.ts.
 * - `<prefix>.presence`: topic exchange of presence transitions, routing key = username; see the
 *   PRESENCE CONTRACT in ./messages.ts. Listeners bind their live queue per watched username.
 * - `<prefix>.invalidations`: fanout exchange; a listener that changed a user's sessions or
 *   devices publishes `{"user_id"}` there, and every listener's live queue is bound to it, so each
 *   drops what it cached about that user; see the INVALIDATION CONTRACT in ./messages.ts.
 *
 * Queue type comes from AMQP_QUEUE_TYPE: quorum queues replicate over a RabbitMQ cluster;
 * classic queues are allowed for a single small node.
 */
export interface Topology {
  /** The first delivery shard, where retries come back to. */
  deliveries: string;
  /** Every delivery shard, `deliveries` first. */
  deliveryShards: string[];
  /** The shard of a device's deliveries. */
  deliveryQueue(deviceId: string): string;
  parking: string;
  live: string;
  presence: string;
  invalidations: string;
  /** Delay tiers in ms, ascending. */
  tiers: number[];
  retryQueue(tierMs: number): string;
}

/** Tier delays: base·4^k below max, then max itself (default: 1 s, 4 s, 16 s, 64 s, 256 s, 1024 s, 1 h). */
export function retryTiers(baseMs: number, maxMs: number): number[] {
  const tiers: number[] = [];
  for (let t = baseMs; t < maxMs; t *= 4) tiers.push(t);
  tiers.push(maxMs);
  return tiers;
}

export function topology(config: Config): Topology {
  const p = config.AMQP_PREFIX;
  const shards = Array.from({ length: config.AMQP_DELIVERY_SHARDS }, (_, n) =>
    n ? `${p}.deliveries.${n}` : `${p}.deliveries`,
  );
  return {
    deliveries: `${p}.deliveries`,
    deliveryShards: shards,
    deliveryQueue: (deviceId) => shards[fnv1a(deviceId) % shards.length] ?? `${p}.deliveries`,
    parking: `${p}.parking`,
    live: `${p}.live`,
    presence: `${p}.presence`,
    invalidations: `${p}.invalidations`,
    tiers: retryTiers(
      config.SENDER_RETRY_BASE_MS,
      Math.max(config.SENDER_RETRY_BASE_MS, config.SENDER_RETRY_MAX_MS),
    ),
    retryQueue: (tierMs) => `${p}.retry.${tierMs}ms`,
  };
}

/** 32-bit FNV-1a: a stable, even spread of device ids over the shards, in every process. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The tier a delay of `ms` waits in: the largest one not longer than `ms` (the shortest if all are). */
export function tierFor(tiers: number[], ms: number): number {
  let chosen = tiers[0] ?? 0;
  for (const t of tiers) if (t <= ms) chosen = t;
  return chosen;
}

export async function declareTopology(ch: Channel, config: Config): Promise<Topology> {
  const t = topology(config);
  const quorum = config.AMQP_QUEUE_TYPE === 'quorum';
  const base: Options.AssertQueue = { durable: true, arguments: { 'x-queue-type': config.AMQP_QUEUE_TYPE } };
  for (const q of t.deliveryShards) await ch.assertQueue(q, base);
  await ch.assertQueue(t.parking, base);
  for (const tier of t.tiers) {
    await ch.assertQueue(t.retryQueue(tier), {
      durable: true,
      arguments: {
        'x-queue-type': config.AMQP_QUEUE_TYPE,
        'x-message-ttl': tier,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': t.deliveries,
        // Quorum queues can dead-letter with confirms, so a delayed delivery is not lost on the way back.
        ...(quorum ? { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' } : {}),
      },
    });
  }
  await ch.assertExchange(t.live, 'topic', { durable: true });
  await ch.assertExchange(t.presence, 'topic', { durable: true });
  await ch.assertExchange(t.invalidations, 'fanout', { durable: true });
  return t;
}

/** Removes a topology (tests with a throw-away prefix). */
export async function deleteTopology(ch: Channel, config: Config): Promise<void> {
  const t = topology(config);
  for (const q of [...t.deliveryShards, t.parking, ...t.tiers.map(t.retryQueue)]) await ch.deleteQueue(q);
  await ch.deleteExchange(t.live);
  await ch.deleteExchange(t.presence);
  await ch.deleteExchange(t.invalidations);
}
