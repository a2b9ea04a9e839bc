import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ensureSigningKey } from '../common/crypto/signing-key.ts';
import { createDb, migrateLatest } from '../common/db/index.ts';
import { loadStackConfig } from './stack/config.ts';
import { ensureCert, startStack } from './stack/index.ts';
import { ensureInstalled, NGINX, OPENSSL, type Requirement } from './stack/preflight.ts';
import { runningProcs } from './stack/processes.ts';
import {
  ensureDatabase,
  ensurePostgres,
  ensureRabbit,
  type ServicesState,
  viaLocalSocket,
} from './stack/services.ts';

// `npm run stack`: the whole pipeline on this machine, no Docker. `npm run stack:stop` undoes it.
const config = loadStackConfig();
const runDir = resolve(config.STACK_RUN_DIR);
const log = (m: string) => console.log(`[stack] ${m}`);

const stillRunning = await runningProcs(runDir);
if (stillRunning.length) {
  const manifest = join(runDir, 'stack.json');
  const url = existsSync(manifest)
    ? (JSON.parse(await readFile(manifest, 'utf8')) as { url: string }).url
    : '';
  console.error(`a stack is already running ${url} (${stillRunning.join(', ')}): npm run stack:stop first`);
  process.exit(1);
}

try {
  // A fresh machine: name (or, as root, install) what is missing before anything starts.
  const install = (required: Requirement[]) =>
    ensureInstalled(required, { install: config.STACK_INSTALL, log });
  const certMissing = !existsSync(config.TLS_CERT_FILE) || !existsSync(config.TLS_KEY_FILE);
  await install([{ ...NGINX, command: config.NGINX_BIN }, ...(certMissing ? [OPENSSL] : [])]);

  const state: ServicesState = {};
  const servicesFile = join(runDir, 'services.json');
  const previous: ServicesState = existsSync(servicesFile)
    ? JSON.parse(await readFile(servicesFile, 'utf8'))
    : {};
  await mkdir(runDir, { recursive: true });
  const remember = () =>
    // Keep "started" from an earlier run whose stop has not happened yet.
    writeFile(
      servicesFile,
      `${JSON.stringify({
        postgres: previous.postgres?.started ? previous.postgres : state.postgres,
        rabbitmq: previous.rabbitmq?.started ? previous.rabbitmq : state.rabbitmq,
      })}\n`,
    );
  const mayStart = config.STACK_SERVICES === 'auto';
  state.postgres = await ensurePostgres(config.DATABASE_URL, log, mayStart, install);
  await remember();
  state.rabbitmq = await ensureRabbit(config.AMQP_URL, log, mayStart, install);
  await remember();
  await ensureDatabase(config.DATABASE_URL, log);

  if (await ensureCert(config.TLS_CERT_FILE, config.TLS_KEY_FILE)) {
    log(`created a self-signed certificate ${config.TLS_CERT_FILE}`);
  }
  if (await ensureSigningKey(config.SIGNING_KEY_FILE)) log(`created signing key ${config.SIGNING_KEY_FILE}`);
  const db = createDb(config.DATABASE_URL, 1);
  try {
    const applied = await migrateLatest(db);
    log(applied.length ? `migrated: ${applied.join(', ')}` : 'database is up to date');
  } finally {
    await db.destroy();
  }

  const databaseUrl = await viaLocalSocket(config.DATABASE_URL);
  if (databaseUrl !== config.DATABASE_URL) log('listeners and senders reach PostgreSQL over its Unix socket');
  const stack = await startStack({
    runDir,
    env: { ...process.env, DATABASE_URL: databaseUrl },
    listeners: config.LISTENERS,
    senders: config.SENDERS,
    httpsHost: config.HTTPS_HOST,
    httpsPort: config.HTTPS_PORT,
    listenerBasePort: config.LISTENER_BASE_PORT,
    metricsBasePort: config.METRICS_BASE_PORT,
    certFile: config.TLS_CERT_FILE,
    keyFile: config.TLS_KEY_FILE,
    nginxBin: config.NGINX_BIN,
    nginxWorkers: 'auto',
    // Plain JavaScript from `npm run build` (which `npm run stack` runs first): no loader in the processes.
    code: 'dist',
    limits: {
      ratePerSecond: config.RATE_LIMIT_PER_SECOND,
      burst: config.RATE_LIMIT_BURST,
      authPerMinute: config.AUTH_RATE_LIMIT_PER_MINUTE,
      authBurst: config.AUTH_RATE_LIMIT_BURST,
      streamConnections: config.STREAM_CONNECTIONS_PER_IP,
    },
    log,
  });
  for (const p of [...stack.listeners, ...stack.senders]) {
    log(`${p.name}: pid ${p.pid}${p.port ? `, port ${p.port}` : ''}, metrics ${p.metricsPort}`);
  }
  log(`nginx: pid ${stack.nginxPid}; logs in ${join(runDir, 'logs')}`);
  console.log(
    `\nmessenger is up: ${stack.url}/api  (self-signed unless cert/ holds yours; stop: npm run stack:stop)`,
  );
  await stack.dispatcher.close();
  process.exit(0);
} catch (err) {
  console.error(`[stack] failed: ${(err as Error).message}`);
  process.exit(1);
}
