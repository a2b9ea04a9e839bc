import { createLogger, logProcessWarnings } from '../common/log.ts';
import { buildListener } from './build.ts';
import { loadListenerConfig } from './config.ts';

const config = loadListenerConfig();
const log = createLogger(config.LOG_LEVEL, 'listener', { async: true });
logProcessWarnings(log);
const listener = await buildListener(config, { log, processMetrics: true, relay: true, jobs: true });
log.info({ address: listener.server.address() }, 'listener ready');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  await listener.close();
  log.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
