import { once } from 'node:events';
import { loadConfig } from '../common/config.ts';
import { loadSigningKey } from '../common/crypto/signing-key.ts';
import type { OutboxEntry } from '../common/db/inbox.ts';
import { createDb, migrateLatest } from '../common/db/index.ts';
import { pgFileStore } from '../common/files/store.ts';
import { createLogger, logProcessWarnings } from '../common/log.ts';
import { listenerMetrics, serveMetrics } from '../common/metrics.ts';
import { every } from '../common/periodic.ts';
import { connectBroker } from '../common/queue/broker.ts';
import { startOutboxRelay } from '../common/queue/relay.ts';
import { createApp } from './app.ts';
import { AuthCache } from './auth-cache.ts';
import { answerClientErrorsAsJson } from './http/client-errors.ts';
import { cleanup } from './jobs/cleanup.ts';
import { collectFiles } from './jobs/file-gc.ts';
import { sendBatcher } from './messaging/send-batcher.ts';
import { attachStream } from './stream/server.ts';

const config = loadConfig();
const log = createLogger(config.LOG_LEVEL, 'listener', { async: true });
logProcessWarnings(log);
const db = createDb(config.DATABASE_URL, config.DATABASE_POOL_MAX, log);
if (config.MIGRATE_ON_START) log.info({ applied: await migrateLatest(db) }, 'migrated');
const signingKey = await loadSigningKey(config.SIGNING_KEY_FILE);
// Reconnects by itself; the listener serves (and 201s) while RabbitMQ is down, the outbox holds the work.
const broker = await connectBroker(config, log);
const relay = startOutboxRelay({
  db,
  broker,
  log,
  batchSize: config.OUTBOX_BATCH_SIZE,
  sweepMs: config.OUTBOX_SWEEP_MS,
  sweepAgeMs: config.OUTBOX_SWEEP_AGE_MS,
});
const outboxWritten = (rows: OutboxEntry[]) => relay.publish(rows);

const metrics = listenerMetrics(db, {
  processMetrics: true,
  amqpReady: () => broker.ready(),
  amqpPublished: () => broker.stats.published,
});
const files = pgFileStore(db);
const app = createApp({
  config,
  db,
  files,
  log,
  metrics,
  signingPublicKey: signingKey.publicKey,
  readiness: {
    postgres: async () => {
      await db.raw('select 1');
    },
    rabbitmq: () => broker.ready(),
  },
  outboxWritten,
  cache: new AuthCache(config.AUTH_CACHE_TTL_MS),
  sends: sendBatcher({
    db,
    log,
    ttlDays: config.INBOX_TTL_DAYS,
    inboxMax: config.INBOX_MAX_EVENTS,
    max: config.SEND_BATCH_MAX,
    committed: outboxWritten,
    published: relay,
  }),
});

const server = app.listen(config.PORT, config.HOST);
answerClientErrorsAsJson(server);
await once(server, 'listening');
// Longer than nginx's upstream keepalive_timeout, so nginx never reuses a socket we are closing.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
// WebSocket upgrades (GET /api/stream) bypass Koa; live wake-ups come from RabbitMQ.
const stream = attachStream(server, app.context.deps);
metrics.openStreams = () => stream.size;
const metricsServer = config.METRICS_PORT
  ? await serveMetrics(metrics.registry, config.HOST, config.METRICS_PORT, log)
  : null;
log.info({ address: server.address() }, 'listener ready');

const jobs = [
  every(config.CLEANUP_INTERVAL_MS, 'cleanup', log, () =>
    cleanup(db, config, log, (userId) => app.context.deps.cache.revoke(userId)),
  ),
  every(config.CLEANUP_INTERVAL_MS, 'file-gc', log, () => collectFiles({ db, files, config, log })),
];

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  const closed = new Promise((resolve) => server.close(resolve));
  server.closeIdleConnections();
  await Promise.all([closed, stream.close(), ...jobs.map((j) => j.stop())]);
  // The relay finishes its batch (commit or rollback) before the broker and the pool close.
  await relay.stop();
  await broker.close().catch(() => {});
  await metricsServer?.close();
  await db.destroy();
  log.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
