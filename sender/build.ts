import { loadSigningKey } from '../common/crypto/signing-key.ts';
import { createDb } from '../common/db/index.ts';
import type { Logger } from '../common/log.ts';
import { senderMetrics, serveMetrics } from '../common/metrics.ts';
import { connectBroker } from '../common/queue/broker.ts';
import type { SenderConfig } from './config.ts';
import { createPusher } from './deliver.ts';
import { startSender } from './worker.ts';

export interface SenderOptions {
  log: Logger;
  /** The process-wide metrics (CPU, memory, GC): on in a sender process, off in a test's. */
  processMetrics?: boolean;
}

export interface Sender {
  /** The queues it consumes (every delivery shard). */
  queues: string[];
  /** Stops taking deliveries, lets the pushes in flight record their outcome and ack, then closes. */
  close(): Promise<void>;
}

/**
 * The composition root of a sender worker, consuming once this resolves. Run any number of them:
 * they share the deliveries queue. sender/main.ts adds the process concerns (signals, exit).
 */
export async function buildSender(config: SenderConfig, opts: SenderOptions): Promise<Sender> {
  const { log } = opts;
  const key = await loadSigningKey(config.SIGNING_KEY_FILE);
  const db = createDb(
    config.DATABASE_URL,
    Math.min(config.DATABASE_POOL_MAX, config.SENDER_PREFETCH + 1),
    log,
  );
  const broker = await connectBroker(config, log);
  const pusher = createPusher(config, key.secretKey);
  const { deliveryShards, parking, tiers, retryQueue } = broker.topology;
  const metrics = senderMetrics(
    db,
    {
      async queueDepths() {
        const d = await broker.queueDepths([...deliveryShards, parking, ...tiers.map(retryQueue)]);
        const sum = (queues: string[]) => queues.reduce((n, q) => n + (d[q] ?? 0), 0);
        return {
          deliveries: sum(deliveryShards),
          retry: sum(tiers.map(retryQueue)),
          parking: d[parking] ?? 0,
        };
      },
      amqpReady: () => broker.ready(),
      amqpPublished: () => broker.stats.published,
    },
    { processMetrics: opts.processMetrics ?? false },
  );
  const metricsServer = config.METRICS_PORT
    ? await serveMetrics(metrics.registry, config.HOST, config.METRICS_PORT, log)
    : null;
  const consumer = startSender({ config, db, broker, pusher, log, metrics });
  return {
    queues: deliveryShards,
    async close() {
      await consumer.stop();
      await Promise.allSettled([pusher.close(), broker.close(), metricsServer?.close()]);
      await db.destroy();
    },
  };
}
