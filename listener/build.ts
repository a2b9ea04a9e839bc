import { once } from 'node:events';
import type { Server } from 'node:http';
import { loadSigningKey } from '../common/crypto/signing-key.ts';
import { createDb, migrateLatest } from '../common/db/index.ts';
import type { Logger } from '../common/log.ts';
import { listenerMetrics, serveMetrics } from '../common/metrics.ts';
import { connectBroker } from '../common/queue/broker.ts';
import { createApp } from './app.ts';
import { AuthCache } from './auth-cache.ts';
import type { ListenerConfig } from './config.ts';
import type { OutboxEntry } from './db/inbox.ts';
import type { Deps } from './deps.ts';
import { pgFileStore } from './files/store.ts';
import { answerClientErrorsAsJson } from './http/client-errors.ts';
import { cleanup } from './jobs/cleanup.ts';
import { collectFiles } from './jobs/file-gc.ts';
import { every } from './jobs/periodic.ts';
import { startOutboxRelay } from './messaging/relay.ts';
import { sendBatcher } from './messaging/send-batcher.ts';
import { attachStream, type LiveStream } from './stream/server.ts';

export interface ListenerOptions {
  log: Logger;
  /** The process-wide metrics (CPU, memory, GC): on in a listener process, off in a test's. */
  processMetrics?: boolean;
  /**
   * Connect to RabbitMQ and relay the outbox. Off, committed rows stay in the outbox for a relay
   * elsewhere (tests that look at the outbox, or need no broker).
   */
  relay?: boolean;
  /** Run the cleanup and file-GC jobs every CLEANUP_INTERVAL_MS. */
  jobs?: boolean;
}

export interface Listener {
  deps: Deps;
  server: Server;
  /** The live stream (GET /api/stream) attached to the server. */
  stream: LiveStream;
  /** Stops accepting, finishes requests and relay batches in flight, then closes every connection and pool. */
  close(): Promise<void>;
}

/**
 * The composition root of a listener: everything it runs, serving on config.HOST:PORT once this
 * resolves. listener/main.ts adds the process concerns (signals, exit); tests start it in-process.
 */
export async function buildListener(config: ListenerConfig, opts: ListenerOptions): Promise<Listener> {
  const { log } = opts;
  const db = createDb(config.DATABASE_URL, config.DATABASE_POOL_MAX, log);
  if (config.MIGRATE_ON_START) log.info({ applied: await migrateLatest(db) }, 'migrated');
  const signingKey = await loadSigningKey(config.SIGNING_KEY_FILE);
  // One AMQP connection: the relay's confirm channel, the live stream's subscription channel and
  // its presence/invalidation publishes. Reconnects by itself; the listener serves (and 201s)
  // while RabbitMQ is down, the outbox holds the work.
  const broker = await connectBroker(config, log, `listener ${config.INSTANCE_ID}`);
  const relay = opts.relay
    ? startOutboxRelay({
        db,
        broker,
        log,
        batchSize: config.OUTBOX_BATCH_SIZE,
        sweepMs: config.OUTBOX_SWEEP_MS,
        sweepAgeMs: config.OUTBOX_SWEEP_AGE_MS,
      })
    : null;
  const outboxWritten = (rows: OutboxEntry[]) => relay?.publish(rows);

  const metrics = listenerMetrics(db, {
    processMetrics: opts.processMetrics ?? false,
    ...(opts.relay && { amqpReady: () => broker.ready(), amqpPublished: () => broker.stats.published }),
  });
  const deps: Deps = {
    config,
    db,
    files: pgFileStore(db),
    log,
    metrics,
    signingPublicKey: signingKey.publicKey,
    readiness: {
      postgres: async () => {
        await db.raw('select 1');
      },
      ...(opts.relay && { rabbitmq: () => broker.ready() }),
    },
    outboxWritten,
    cache: new AuthCache(config.AUTH_CACHE_TTL_MS),
    sends: sendBatcher({
      db,
      log,
      ttlDays: config.INBOX_TTL_DAYS,
      inboxMax: config.INBOX_MAX_EVENTS,
      max: config.SEND_BATCH_MAX,
      lingerMs: config.SEND_BATCH_LINGER_MS,
      committed: (rows) => deps.outboxWritten(rows),
      ...(relay && { published: relay }),
    }),
  };
  const app = createApp(deps);

  const server = app.listen(config.PORT, config.HOST);
  answerClientErrorsAsJson(server);
  await once(server, 'listening');
  // Longer than nginx's upstream keepalive_timeout, so nginx never reuses a socket we are closing.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  // WebSocket upgrades (GET /api/stream) bypass Koa; live wake-ups come from RabbitMQ.
  const stream = attachStream(server, deps, broker);
  metrics.openStreams = () => stream.size;
  const metricsServer = config.METRICS_PORT
    ? await serveMetrics(metrics.registry, config.HOST, config.METRICS_PORT, log)
    : null;

  const jobs = opts.jobs
    ? [
        every(config.CLEANUP_INTERVAL_MS, 'cleanup', log, () =>
          cleanup(db, config, log, (userId) => deps.cache.revoke(userId)),
        ),
        every(config.CLEANUP_INTERVAL_MS, 'file-gc', log, () => collectFiles(deps)),
      ]
    : [];

  return {
    deps,
    server,
    stream,
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeIdleConnections();
      await Promise.all([closed, stream.close(), ...jobs.map((j) => j.stop())]);
      // The relay finishes its batch (commit or rollback) before the broker and the pool close.
      await relay?.stop();
      await broker.close().catch(() => {});
      await metricsServer?.close();
      await db.destroy();
    },
  };
}
