import type { Channel, ConsumeMessage } from 'amqplib';
import pLimit from 'p-limit';
import { type DeliveryStore, deliveryStore } from '../common/db/deliveries.ts';
import type { Db } from '../common/db/index.ts';
import { LazyChild, type Logger } from '../common/log.ts';
import type { SenderMetrics } from '../common/metrics.ts';
import type { Broker, Consumer } from '../common/queue/broker.ts';
import {
  type Delivery,
  deliveryPublications,
  parkingPublication,
  parseDeliveries,
  retryPublication,
} from '../common/queue/messages.ts';
import { createAcker } from './acker.ts';
import type { SenderConfig } from './config.ts';
import type { Pusher } from './deliver.ts';
import { type OriginGate, originGate, originOf } from './origin-gate.ts';
import { deferral, outcome, type RetryPolicy } from './outcome.ts';

/** A quick origin's delivery waits here at most this long for a free slot before it is deferred… */
const GATE_WAIT_MS = 1_000;
/** …and an origin whose oldest push in flight is older than this is slow: deferred at once. */
const GATE_SLOW_MS = 1_000;

export interface SenderDeps {
  config: SenderConfig;
  db: Db;
  broker: Broker;
  pusher: Pusher;
  log: Logger;
  /** Deliveries by outcome and commit-to-push latency (absent in some tests). */
  metrics?: SenderMetrics;
  /** Per-origin cap on pushes in flight (startSender makes one; absent = no cap). */
  gate?: OriginGate;
  /** Batches the lookups and outcome writes of the deliveries in flight (startSender makes one). */
  store?: DeliveryStore;
}

function retryPolicy(config: SenderConfig): RetryPolicy {
  return {
    baseMs: config.SENDER_RETRY_BASE_MS,
    maxMs: Math.max(config.SENDER_RETRY_BASE_MS, config.SENDER_RETRY_MAX_MS),
    windowMs: config.SENDER_RETRY_WINDOW_MS,
    jitter: config.SENDER_RETRY_JITTER,
  };
}

/**
 * One delivery: skip/park early → push → decide → record in PostgreSQL → (retry/park publish).
 * Resolves once its outcome is recorded (or it is put back); throws when that could not be done,
 * and its broker message is then not acked as it is (see startSender), so a crash at any point
 * means a redelivery (same webhook-id), never a lost delivery.
 */
async function handleDelivery(deps: SenderDeps & { store: DeliveryStore }, d: Delivery): Promise<void> {
  const { broker, pusher, store } = deps;
  const log = new LazyChild(deps.log, {
    event_id: d.event_id,
    device_id: d.device_id,
    seq: d.seq,
    attempt: d.attempt + 1,
    req_id: d.request_id,
  });
  // (A few ms early is clock skew between us and the broker's TTL, not worth another tier.)
  if (d.not_before !== undefined && d.not_before - Date.now() > 20) {
    // Came back through a shorter tier than the delay asked for: wait the rest.
    await broker.publish([retryPublication(broker.topology, d, d.not_before)]);
    return;
  }
  // The first publish carries the event and the address as of its commit: no read needed.
  const target =
    d.body !== undefined && d.attempt === 0
      ? { body: d.body, user_address: d.address ?? null }
      : await store.findPushTarget({ device_id: d.device_id, seq: d.seq, event_id: d.event_id });
  if (!target?.user_address) {
    log.debug({ reason: target ? 'no_address' : 'not_in_inbox' }, 'delivery skipped');
    deps.metrics?.deliveries.inc({ outcome: 'skipped' });
    return;
  }
  const address = target.user_address;
  const origin = originOf(address);
  if (deps.gate && !(await deps.gate.acquire(origin))) {
    // That receiver already has all the pushes it may have from us: look again later, without
    // an attempt, and keep this slot for other receivers.
    const deferrals = (d.deferrals ?? 0) + 1;
    const o = deferral(
      deferrals,
      Date.now() - Date.parse(d.created_at),
      retryPolicy(deps.config),
      Math.random,
      deps.gate.deferFor(origin),
    );
    const next = { ...d, deferrals };
    await broker.publish([
      o.kind === 'retry'
        ? retryPublication(broker.topology, next, Date.now() + o.afterMs)
        : parkingPublication(broker.topology, next, o),
    ]);
    deps.metrics?.deliveries.inc({ outcome: o.kind === 'retry' ? 'deferred' : 'dead' });
    if (o.kind === 'retry') log.debug({ deferrals, retry_in_ms: o.afterMs }, 'origin busy, deferred');
    else
      log.warn({ deferrals, outcome: 'dead', reason: o.kind === 'dead' ? o.reason : undefined }, 'push dead');
    return;
  }
  const attempt = d.attempt + 1;
  let res: Awaited<ReturnType<Pusher['push']>>;
  try {
    res = await pusher.push(address, d.event_id, target.body);
  } finally {
    deps.gate?.release(origin);
  }
  const now = Date.now();
  const o = outcome(
    res.answer,
    { number: attempt, elapsedMs: now - Date.parse(d.created_at), now },
    retryPolicy(deps.config),
  );
  await store.recordOutcome({
    device_id: d.device_id,
    seq: d.seq,
    event_id: d.event_id,
    attempt,
    status_code: res.answer.kind === 'response' ? res.answer.status : null,
    error_class: res.answer.kind === 'error' ? res.answer.errorClass : null,
    duration_ms: res.durationMs,
    outcome: o.kind,
    retry_in_ms: o.kind === 'retry' ? o.afterMs : null,
    request_id: d.request_id,
    address,
  });
  // Retries read the event and the address again at push time (acked meanwhile: skipped).
  const { body: _body, address: _address, ...next } = { ...d, attempt };
  if (o.kind === 'retry') await broker.publish([retryPublication(broker.topology, next, now + o.afterMs)]);
  if (o.kind === 'dead') await broker.publish([parkingPublication(broker.topology, next, o)]);
  deps.metrics?.deliveries.inc({ outcome: o.kind });
  deps.metrics?.commitToPush.observe({ outcome: o.kind }, (now - Date.parse(d.created_at)) / 1000);
  deps.metrics?.pushDuration.observe(res.durationMs / 1000);
  const fields = {
    outcome: o.kind,
    status: res.answer.kind === 'response' ? res.answer.status : undefined,
    error_class: res.answer.kind === 'error' ? res.answer.errorClass : undefined,
    error: res.error,
    ms: res.durationMs,
    ...(o.kind === 'retry' && { retry_in_ms: o.afterMs }),
    ...(o.kind === 'dead' && { reason: o.reason }),
    ...(o.kind === 'delivered' && { latency_ms: now - Date.parse(d.created_at) }),
  };
  // One line per push is for operators who ask for it (LOG_LEVEL=debug); failures always log.
  if (o.kind === 'delivered') log.debug(fields, 'push delivered');
  else log.warn(fields, `push ${o.kind}`);
}

/**
 * Starts consuming every delivery shard. A message carries one delivery or a relay batch's
 * (parseDeliveries); at most SENDER_PREFETCH deliveries are handled at once, and a message is
 * acked once every delivery in it has its outcome recorded. stop() finishes the deliveries in
 * flight before resolving.
 */
export function startSender(deps: SenderDeps): Consumer {
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const withGate = {
    ...deps,
    gate:
      deps.gate ??
      originGate(deps.config.SENDER_CONNECTIONS_PER_ORIGIN, {
        // An origin that turns slow holds at most its connections and a quarter of the prefetch.
        maxWaiting: Math.floor(deps.config.SENDER_PREFETCH / 4),
        waitMs: GATE_WAIT_MS,
        slowMs: GATE_SLOW_MS,
      }),
    store: deps.store ?? deliveryStore(deps.db),
  };
  const slots = pLimit(deps.config.SENDER_PREFETCH);
  const acker = createAcker((n) => deps.metrics?.amqpAcks.inc(n));
  const { topology } = deps.broker;
  const prefetch = Math.ceil(deps.config.SENDER_PREFETCH / topology.deliveryShards.length);

  async function handleMessage(msg: ConsumeMessage, ch: Channel): Promise<void> {
    acker.received(ch, msg);
    const deliveries = parseDeliveries(msg.content);
    if (!deliveries) {
      deps.log.warn({ queue: msg.fields.routingKey }, 'malformed delivery dropped');
      acker.ack(ch, msg);
      return;
    }
    const results = await Promise.allSettled(deliveries.map((d) => slots(() => handleDelivery(withGate, d))));
    const failed = deliveries.filter((_, i) => results[i]?.status === 'rejected');
    if (failed.length) {
      const err = results.find((r) => r.status === 'rejected')?.reason;
      // PostgreSQL or the broker is down: these go back after a pause (no hot loop) and are
      // attempted again with the same webhook-id. Only they: when the others are recorded, the
      // failed ones are published again as a message of their own.
      deps.log.warn(
        { err, failed: failed.length, of: deliveries.length },
        'delivery failed before its outcome was recorded; queued again',
      );
      await pause(1_000);
      const requeue =
        failed.length === deliveries.length ||
        !(await deps.broker
          .publish(
            deliveryPublications(
              topology,
              failed.map((delivery) => ({ delivery, outboxId: 'requeued' })),
            ),
          )
          .then(
            () => true,
            () => false,
          ));
      if (requeue) {
        acker.forget(ch, msg);
        try {
          ch.nack(msg, false, true);
        } catch {}
        return;
      }
    }
    acker.ack(ch, msg);
  }

  const consumers = topology.deliveryShards.map((queue) =>
    deps.broker.consume(queue, prefetch, handleMessage),
  );
  return { stop: async () => void (await Promise.all(consumers.map((c) => c.stop()))) };
}
