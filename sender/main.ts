import { loadConfig } from '../common/config.ts';
import { loadSigningKey } from '../common/crypto/signing-key.ts';
import { createDb } from '../common/db/index.ts';
import { createLogger, logProcessWarnings } from '../common/log.ts';
import { senderMetrics, serveMetrics } from '../common/metrics.ts';
import { connectBroker } from '../common/queue/broker.ts';
import { createPusher } from './deliver.ts';
import { startSender } from './worker.ts';

// Composition root of a sender worker. Run any number of them: they share the deliveries queue.
const config = loadConfig();
const log = createLogger(config.LOG_LEVEL, 'sender', { async: true });
logProcessWarnings(log);
const key = await loadSigningKey(config.SIGNING_KEY_FILE);
const db = createDb(config.DATABASE_URL, Math.min(config.DATABASE_POOL_MAX, config.SENDER_PREFETCH + 1), log);
const broker = await connectBroker(config, log);
const pusher = createPusher(config, key.secretKey);
const { deliveries, parking, tiers, retryQueue } = broker.topology;
const metrics = senderMetrics(
  db,
  {
    async queueDepths() {
      const d = await broker.queueDepths([deliveries, parking, ...tiers.map(retryQueue)]);
      const retry = tiers.reduce((n, t) => n + (d[retryQueue(t)] ?? 0), 0);
      return { deliveries: d[deliveries] ?? 0, retry, parking: d[parking] ?? 0 };
    },
    amqpReady: () => broker.ready(),
    amqpPublished: () => broker.stats.published,
  },
  { processMetrics: true },
);
const metricsServer = config.METRICS_PORT
  ? await serveMetrics(metrics.registry, config.HOST, config.METRICS_PORT, log)
  : null;
const consumer = startSender({ config, db, broker, pusher, log, metrics });
log.info(
  {
    queue: broker.topology.deliveries,
    prefetch: config.SENDER_PREFETCH,
    allow_private: config.SENDER_ALLOW_PRIVATE_ADDRESSES,
  },
  'sender ready',
);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down: finishing pushes in flight');
  // Pushes end within SENDER_TIMEOUT_MS; anything slower than that plus slack is stuck (a dead
  // broker socket, a hung pool): exit anyway, the broker redelivers whatever was not acked.
  setTimeout(() => {
    log.error('shutdown took too long, exiting');
    process.exit(1);
  }, config.SENDER_TIMEOUT_MS + 10_000).unref();
  // Stop taking deliveries, let the pushes in flight record their outcome and ack, then close.
  await consumer.stop();
  await Promise.allSettled([pusher.close(), broker.close(), metricsServer?.close()]);
  await db.destroy();
  log.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
