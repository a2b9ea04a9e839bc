import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import amqp from 'amqplib';
import { type Config, loadConfig } from '../../common/config.ts';
import { ensureSigningKey } from '../../common/crypto/signing-key.ts';
import { dropDatabase, freshDatabase } from '../../common/db/admin.ts';
import { deleteTopology } from '../../common/queue/topology.ts';
import { ROOT, type Stack, startStack } from '../stack/index.ts';
import { viaLocalSocket } from '../stack/services.ts';

interface BenchProcess {
  name: string;
  pid: number;
  /** Its Prometheus endpoint on 127.0.0.1 (heap in use during the soak). */
  metricsPort: number;
}

/** What the phases need of a stack: where to send, and which processes to watch. */
export interface BenchStack {
  url: string;
  listeners: BenchProcess[];
  senders: BenchProcess[];
  nginxPid: number | undefined;
  stop(): Promise<void>;
}

/** Limits far above anything the bench sends, so the edge's rate limiting never shapes the load. */
const OPEN_LIMITS = {
  ratePerSecond: 100_000,
  burst: 100_000,
  authPerMinute: 1_000_000,
  authBurst: 100_000,
  streamConnections: 10_000,
};

/** The preload that profiles a process until it exits (see cpu-profile.mjs). */
function profiler(dir: string): string {
  const url = new URL('./cpu-profile.mjs', import.meta.url);
  url.searchParams.set('dir', resolve(dir));
  return url.href;
}

export interface BenchEnv {
  runDir: string;
  config: Config;
  env: NodeJS.ProcessEnv;
}

/**
 * A fresh database (`<name>_bench_<run id>`, migrated) and a unique RabbitMQ prefix for this run,
 * so results do not depend on what an earlier run or the test suite left behind, and two benches
 * on one machine neither drop each other's database nor mix their pg_stat_database counters.
 */
export async function prepareEnv(opts: {
  logLevel: string;
  cpuProf: string | undefined;
  extra: Record<string, string>;
}): Promise<BenchEnv> {
  const base = loadConfig();
  // As `npm run stack` runs it: over the Unix socket when PostgreSQL is local.
  const url = new URL(await viaLocalSocket(base.DATABASE_URL));
  const id = randomBytes(3).toString('hex');
  const name = `${url.pathname.slice(1) || 'messenger'}_bench_${id}`.replace(/[^\w]/g, '');
  url.pathname = `/${name}`;
  await freshDatabase(url.href);
  const runDir = resolve(ROOT, 'run', `bench-${id}`);
  await mkdir(runDir, { recursive: true });
  if (opts.cpuProf) await mkdir(opts.cpuProf, { recursive: true });
  const keyFile = join(runDir, 'signing-key.json');
  await ensureSigningKey(keyFile);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: url.href,
    AMQP_PREFIX: `bench-${randomBytes(3).toString('hex')}`,
    LOG_LEVEL: opts.logLevel,
    // Setup registers and logs in many users; the hash cost does not touch the send path.
    PASSWORD_HASH_COST: '1024',
    SENDER_ALLOW_PRIVATE_ADDRESSES: 'true',
    SIGNING_KEY_FILE: keyFile,
    ...(opts.cpuProf && { NODE_OPTIONS: `--import=${profiler(opts.cpuProf)}` }),
    ...opts.extra,
  };
  return { runDir, config: loadConfig(env), env };
}

export async function startBenchStack(e: BenchEnv, listeners: number, senders: number): Promise<BenchStack> {
  const stack: Stack = await startStack({
    runDir: join(e.runDir, `stack-${listeners}`),
    listeners,
    senders,
    env: e.env,
    limits: OPEN_LIMITS,
  });
  return {
    url: stack.url,
    listeners: stack.listeners.map((p) => ({ name: p.name, pid: p.pid, metricsPort: p.metricsPort })),
    senders: stack.senders.map((p) => ({ name: p.name, pid: p.pid, metricsPort: p.metricsPort })),
    nginxPid: stack.nginxPid,
    stop: () => stack.stop(),
  };
}

/** A stack someone else runs (`--url`): nothing to watch, nothing to stop. */
export function externalStack(url: string): BenchStack {
  return {
    url: url.replace(/\/+$/, ''),
    listeners: [],
    senders: [],
    nginxPid: undefined,
    stop: async () => {},
  };
}

/** Removes this run's queues, and its run directory and database unless they are kept for inspection. */
export async function cleanupEnv(e: BenchEnv, keep: { runDir: boolean; database: boolean }): Promise<void> {
  const conn = await amqp.connect(e.config.AMQP_URL);
  try {
    const ch = await conn.createChannel();
    await deleteTopology(ch, e.config).catch(() => {});
  } finally {
    await conn.close().catch(() => {});
  }
  if (!keep.database) await dropDatabase(e.config.DATABASE_URL);
  if (!keep.runDir) await rm(e.runDir, { recursive: true, force: true });
}
