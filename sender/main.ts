import { createLogger, logProcessWarnings } from '../common/log.ts';
import { buildSender } from './build.ts';
import { loadSenderConfig } from './config.ts';

const config = loadSenderConfig();
const log = createLogger(config.LOG_LEVEL, 'sender', { async: true });
logProcessWarnings(log);
const sender = await buildSender(config, { log, processMetrics: true });
log.info(
  {
    queues: sender.queues,
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
  await sender.close();
  log.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
