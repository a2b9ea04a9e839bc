import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from './db/index.ts';
import type { Logger } from './log.ts';

/**
 * Prometheus metrics. Every process (and every in-process listener of a test) owns its own
 * Registry: nothing goes to prom-client's global default registry. Sampled values (backlog,
 * pool, queue depths) are read when scraped, so an idle process costs nothing.
 */

/** Push and relay latencies span milliseconds (healthy) to hours (retries): seconds, wide buckets. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface RegistryOptions {
  /** The process-wide default metrics (CPU, memory, event loop lag, GC); off for in-process test listeners. */
  processMetrics?: boolean;
}

function registry(service: string, opts: RegistryOptions): Registry {
  const r = new Registry();
  r.setDefaultLabels({ service });
  if (opts.processMetrics) collectDefaultMetrics({ register: r });
  return r;
}

/** knex's pool (tarn): connections in use, idle, and requests waiting for one. */
function poolGauge(r: Registry, db: Db): void {
  new Gauge({
    name: 'messenger_pg_pool_connections',
    help: 'PostgreSQL pool connections by state (used, free, pending acquires)',
    labelNames: ['state'],
    registers: [r],
    collect() {
      const pool = (db.client as { pool?: Tarn }).pool;
      this.set({ state: 'used' }, pool?.numUsed() ?? 0);
      this.set({ state: 'free' }, pool?.numFree() ?? 0);
      this.set({ state: 'pending' }, pool?.numPendingAcquires() ?? 0);
    },
  });
}

interface Tarn {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

/** 1 while RabbitMQ answers `ready()` (the listener's relay and the sender's consumer both need it). */
function amqpGauge(r: Registry, ready: () => Promise<void>): void {
  new Gauge({
    name: 'messenger_amqp_connected',
    help: '1 while the RabbitMQ connection is up',
    registers: [r],
    async collect() {
      this.set(
        await ready().then(
          () => 1,
          () => 0,
        ),
      );
    },
  });
}

/** Messages this process published to RabbitMQ (read from the broker layer when scraped). */
function publishesCounter(r: Registry, published: () => number): void {
  new Counter({
    name: 'messenger_amqp_publishes_total',
    help: 'Messages published to RabbitMQ by this process (deliveries, wake-ups, retries, presence changes, invalidations)',
    registers: [r],
    collect() {
      this.reset();
      this.inc(published());
    },
  });
}

export interface PresenceMetrics {
  /** Online/offline transitions this listener settled and published (`state`: online | offline). */
  transitionsPublished: Counter<'state'>;
  /** Presence transitions this listener received from RabbitMQ for users its sockets watch. */
  changesReceived: Counter;
  /** Presence frames written to this listener's sockets (initial states and changes). */
  framesSent: Counter;
  /** Reads the number of sockets with a presence subscription; the stream server points it at its hub. */
  subscriptions: () => number;
}

export interface ListenerMetrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  messagesAccepted: Counter<'kind'>;
  /** Reads the number of open live streams; main.ts points it at the stream server. */
  openStreams: () => number;
  presence: PresenceMetrics;
}

function presenceMetrics(r: Registry): PresenceMetrics {
  const m: PresenceMetrics = {
    transitionsPublished: new Counter({
      name: 'messenger_presence_transitions_published_total',
      help: 'Presence transitions (first stream opened, last closed or expired) this listener published',
      labelNames: ['state'],
      registers: [r],
    }),
    changesReceived: new Counter({
      name: 'messenger_presence_changes_received_total',
      help: 'Presence transitions received from RabbitMQ for users watched on this listener',
      registers: [r],
    }),
    framesSent: new Counter({
      name: 'messenger_presence_frames_sent_total',
      help: 'Presence frames sent to live-stream subscribers on this listener',
      registers: [r],
    }),
    subscriptions: () => 0,
  };
  new Gauge({
    name: 'messenger_presence_subscriptions',
    help: 'Live-stream sockets on this listener with a presence subscription',
    registers: [r],
    collect() {
      this.set(m.subscriptions());
    },
  });
  return m;
}

export function listenerMetrics(
  db: Db,
  opts: RegistryOptions & { amqpReady?: () => Promise<void>; amqpPublished?: () => number } = {},
): ListenerMetrics {
  const r = registry('listener', opts);
  poolGauge(r, db);
  if (opts.amqpReady) amqpGauge(r, opts.amqpReady);
  if (opts.amqpPublished) publishesCounter(r, opts.amqpPublished);
  const m: ListenerMetrics = {
    registry: r,
    httpDuration: new Histogram({
      name: 'messenger_http_request_duration_seconds',
      help: 'HTTP requests by route template, method and status',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers: [r],
    }),
    messagesAccepted: new Counter({
      name: 'messenger_messages_accepted_total',
      help: 'Messages durably stored (201), 1:1 or group',
      labelNames: ['kind'],
      registers: [r],
    }),
    openStreams: () => 0,
    presence: presenceMetrics(r),
  };
  new Gauge({
    name: 'messenger_stream_open',
    help: 'Authenticated live-stream WebSockets open on this listener',
    registers: [r],
    collect() {
      this.set(m.openStreams());
    },
  });
  // One query per scrape for both: how much waits for the relay, and for how long the oldest has.
  let sampled: Promise<{ rows: number; age: number }> | null = null;
  const sample = () => {
    sampled ??= db
      .raw<{ rows: { n: string; age: number | null }[] }>(
        `SELECT coalesce(sum(cardinality(event_ids)), 0) AS n,
                extract(epoch FROM now() - min(created_at))::float8 AS age FROM outbox`,
      )
      .then(({ rows }) => ({ rows: Number(rows[0]?.n ?? 0), age: Math.max(0, rows[0]?.age ?? 0) }))
      .finally(() => setImmediate(() => (sampled = null)));
    return sampled;
  };
  new Gauge({
    name: 'messenger_outbox_backlog',
    help: 'Events in the outbox not yet relayed to RabbitMQ (all listeners share the table)',
    registers: [r],
    async collect() {
      this.set((await sample().catch(() => ({ rows: -1 }))).rows);
    },
  });
  new Gauge({
    name: 'messenger_relay_lag_seconds',
    help: 'Age of the oldest outbox row not yet relayed (0 when the outbox is empty)',
    registers: [r],
    async collect() {
      this.set((await sample().catch(() => ({ age: -1 }))).age);
    },
  });
  return m;
}

export interface SenderMetrics {
  registry: Registry;
  deliveries: Counter<'outcome'>;
  /** From the outbox row's commit (`created_at`) until the push was answered. */
  commitToPush: Histogram<'outcome'>;
  pushDuration: Histogram;
  /** basic.ack frames sent (one `multiple` ack settles many deliveries). */
  amqpAcks: Counter;
}

export interface SenderProbes {
  /** Messages waiting per logical queue (`deliveries`, `retry`, `parking`). */
  queueDepths(): Promise<Record<string, number>>;
  /** Throws while RabbitMQ is unreachable. */
  amqpReady(): Promise<void>;
  /** Messages published so far (retries, parking). */
  amqpPublished?(): number;
}

export function senderMetrics(db: Db, probes: SenderProbes, opts: RegistryOptions = {}): SenderMetrics {
  const r = registry('sender', opts);
  poolGauge(r, db);
  new Gauge({
    name: 'messenger_queue_messages',
    help: 'Messages waiting in RabbitMQ: deliveries, retry (all delay tiers) and parking',
    labelNames: ['queue'],
    registers: [r],
    async collect() {
      const depths = await probes.queueDepths().catch(() => ({}) as Record<string, number>);
      for (const [queue, n] of Object.entries(depths)) this.set({ queue }, n);
    },
  });
  amqpGauge(r, probes.amqpReady);
  if (probes.amqpPublished) publishesCounter(r, probes.amqpPublished);
  return {
    registry: r,
    deliveries: new Counter({
      name: 'messenger_deliveries_total',
      help: 'Push deliveries by outcome (delivered, retry, gone, dead, skipped; deferred: its origin was busy)',
      labelNames: ['outcome'],
      registers: [r],
    }),
    commitToPush: new Histogram({
      name: 'messenger_commit_to_push_seconds',
      help: "From the event's commit (outbox created_at) to the push being answered, by outcome",
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
      registers: [r],
    }),
    pushDuration: new Histogram({
      name: 'messenger_push_duration_seconds',
      help: 'Duration of one push request to a device address',
      buckets: HTTP_BUCKETS,
      registers: [r],
    }),
    amqpAcks: new Counter({
      name: 'messenger_amqp_acks_total',
      help: 'basic.ack frames sent to RabbitMQ (one multiple-ack settles a run of deliveries)',
      registers: [r],
    }),
  };
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** GET /metrics on an internal port (never routed by nginx); anything else is 404. */
export async function serveMetrics(
  r: Registry,
  host: string,
  port: number,
  log: Logger,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    r.metrics().then(
      (text) => res.writeHead(200, { 'content-type': r.contentType }).end(text),
      (err: unknown) => {
        log.warn({ err }, 'metrics collection failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
      },
    );
  });
  server.listen(port, host);
  await once(server, 'listening');
  const actual = (server.address() as AddressInfo).port;
  log.info({ port: actual }, 'metrics listening');
  return {
    port: actual,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
