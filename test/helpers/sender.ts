import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import amqp from 'amqplib';
import { dropDatabase, freshDatabase, withDatabase } from '../../common/db/admin.ts';
import { createDb, type Db } from '../../common/db/index.ts';
import { createLogger } from '../../common/log.ts';
import { deleteTopology } from '../../common/queue/topology.ts';
import { buildSender } from '../../sender/build.ts';
import { testConfig, testEnv } from './env.ts';
import { type Call, client } from './http.ts';
import { startListener, type TestListener } from './listener.ts';

/**
 * The push pipeline for tests: listener (+ outbox relay) → RabbitMQ → sender(s) → sinks.
 *
 *   const stack = await startDeliveryStack();          // own database, own queue names
 *   const sender = await stack.startSender();          // in-process; {process: true} = child
 *   ... stack.call('POST', '/api/messages', …) ... sink.waitFor(…)
 *   await stack.close();                               // stops everything, deletes queues + db
 *
 * Isolation: every stack gets a fresh database and a unique AMQP_PREFIX, so relays and senders of
 * other test runs on this machine can neither take its outbox rows nor its deliveries.
 * Defaults are test-sized: retries after 100, 200, 400 ms… (no jitter), private addresses allowed.
 */
export interface DeliveryStack {
  /** Env overrides every process of this stack runs with (DATABASE_URL, AMQP_PREFIX, …). */
  env: Record<string, string>;
  listener: TestListener;
  call: Call;
  /** A direct pool on this stack's database, for assertions (delivery_attempts, inbox). */
  db: Db;
  startSender(overrides?: Record<string, string>, opts?: { process?: boolean }): Promise<TestSender>;
  close(): Promise<void>;
}

export interface TestSender {
  /** Graceful stop (SIGTERM for a child): in-flight pushes finish first. */
  stop(): Promise<void>;
  /** Child process only: SIGKILL, nothing finishes. */
  kill(): Promise<void>;
}

const fastRetries: Record<string, string> = {
  SENDER_RETRY_BASE_MS: '100',
  SENDER_RETRY_MAX_MS: '400',
  SENDER_RETRY_JITTER: 'false',
  SENDER_ALLOW_PRIVATE_ADDRESSES: 'true',
  OUTBOX_SWEEP_MS: '200',
};

/** A fresh, migrated database; `drop()` removes it (forcing out leftover connections). */
export async function isolatedDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = new URL(testConfig().DATABASE_URL);
  const name = `${base.pathname.slice(1)}_${randomBytes(4).toString('hex')}`;
  const url = withDatabase(base.href, name);
  await freshDatabase(url);
  return { url, drop: () => dropDatabase(url) };
}

/** A sender built as sender/main.ts builds one, in this process. */
async function inProcessSender(env: Record<string, string>): Promise<TestSender> {
  const config = testConfig({ DATABASE_POOL_MAX: '5', ...env });
  const sender = await buildSender(config, { log: createLogger(config.LOG_LEVEL, 'sender-test') });
  return { stop: () => sender.close(), kill: () => sender.close() };
}

/** `npm run start:sender` as a child process; resolves once it consumes. */
async function childSender(env: Record<string, string>): Promise<TestSender> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'sender/main.ts'], {
    env: testEnv({ ...env, LOG_LEVEL: 'info' }),
    cwd: new URL('../..', import.meta.url).pathname,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  // Never outlive the test process (mocha --exit, a failed hook): an orphan would keep consuming.
  const orphanGuard = () => child.kill('SIGKILL');
  process.once('exit', orphanGuard);
  void exited.then(() => process.off('exit', orphanGuard));
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    // Keep reading stdout for the child's whole life, or a full pipe would block its logging.
    child.stdout?.on('data', (chunk: Buffer) => {
      if (seen.length > 100_000) return;
      seen += chunk.toString();
      if (seen.includes('"sender ready"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`sender exited early (${code})`)));
  });
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    const slow = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(slow);
  };
  return { stop: () => signal('SIGTERM'), kill: () => signal('SIGKILL') };
}

export async function startDeliveryStack(overrides: Record<string, string> = {}): Promise<DeliveryStack> {
  const database = await isolatedDatabase();
  const env = {
    ...fastRetries,
    DATABASE_URL: database.url,
    AMQP_PREFIX: `test.${randomBytes(4).toString('hex')}`,
    ...overrides,
  };
  const config = testConfig(env);
  // Relays its outbox to RabbitMQ, as a listener process does.
  const listener = await startListener(env, { relay: true });
  const db = createDb(config.DATABASE_URL, 2);
  const senders: TestSender[] = [];
  return {
    env,
    listener,
    call: client(listener.url),
    db,
    async startSender(more = {}, opts = {}) {
      const s = await (opts.process ? childSender : inProcessSender)({ ...env, ...more });
      senders.push(s);
      return s;
    },
    async close() {
      await Promise.allSettled(senders.map((s) => s.stop()));
      await listener.close();
      await db.destroy();
      const conn = await amqp.connect(config.AMQP_URL);
      try {
        await deleteTopology(await conn.createChannel(), config);
      } finally {
        await conn.close();
      }
      await database.drop();
    },
  };
}

/** Polls `check` until it returns a truthy value (returned) or `timeoutMs` passes (throws). */
export async function eventually<T>(
  check: () => Promise<T>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<Exclude<T, false | null | undefined | 0 | ''>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Exclude<T, false | null | undefined | 0 | ''>;
    if (Date.now() > deadline) throw new Error(`${what} not reached in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
