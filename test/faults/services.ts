import { execFile, execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import pg from 'pg';
import { testConfig } from '../helpers/env.ts';

/**
 * Bounces the machine's shared PostgreSQL and RabbitMQ for the fault suite. Other runs on this
 * machine depend on both: outages stay short, and whatever this file stopped is started again
 * by `ensureServicesUp()` (after hooks) or, when the test process dies, synchronously on exit.
 */
const run = promisify(execFile);
const down = new Set<'postgres' | 'rabbitmq'>();

function cluster(): [string, string] {
  const port = new URL(testConfig().DATABASE_URL).port || '5432';
  const lines = execFileSync('pg_lsclusters', ['--no-header'], { encoding: 'utf8' }).trim().split('\n');
  const line = lines.map((l) => l.trim().split(/\s+/)).find((f) => f[2] === port);
  if (!line?.[0] || !line[1]) throw new Error(`no PostgreSQL cluster on port ${port}:\n${lines.join('\n')}`);
  return [line[0], line[1]];
}

const pgArgs = (action: 'start' | 'stop') => {
  const [version, name] = cluster();
  return ['--skip-systemctl-redirect', version, name, action, ...(action === 'stop' ? ['-m', 'fast'] : [])];
};

async function postgresUp(): Promise<boolean> {
  const c = new pg.Client({ connectionString: testConfig().DATABASE_URL, connectionTimeoutMillis: 2_000 });
  try {
    await c.connect();
    await c.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

async function rabbitmqUp(): Promise<boolean> {
  try {
    const conn = await amqp.connect(testConfig().AMQP_URL, { timeout: 2_000 });
    await conn.close();
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not come back within ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** `pg_ctlcluster … stop -m fast`: open sessions are terminated, new ones refused. */
export async function stopPostgres(): Promise<void> {
  down.add('postgres');
  await run('pg_ctlcluster', pgArgs('stop'), { timeout: 60_000 });
}

export async function startPostgres(timeoutMs = 60_000): Promise<void> {
  await run('pg_ctlcluster', pgArgs('start'), { timeout: timeoutMs });
  await until('PostgreSQL', postgresUp, timeoutMs);
  down.delete('postgres');
}

/** `rabbitmqctl stop_app`: the node stays, the broker closes every connection and refuses new ones. */
export async function stopRabbitmq(): Promise<void> {
  down.add('rabbitmq');
  await run('rabbitmqctl', ['stop_app'], { timeout: 60_000 });
}

export async function startRabbitmq(timeoutMs = 60_000): Promise<void> {
  await run('rabbitmqctl', ['start_app'], { timeout: timeoutMs });
  await until('RabbitMQ', rabbitmqUp, timeoutMs);
  down.delete('rabbitmq');
}

/**
 * Starts whatever is not answering (after a failed or interrupted fault), and throws loudly
 * when a service still does not come back — the machine's services must never stay down.
 */
export async function ensureServicesUp(): Promise<void> {
  const failures: string[] = [];
  if (!(await postgresUp())) {
    await startPostgres().catch((err: Error) => failures.push(`PostgreSQL: ${err.message}`));
  }
  if (!(await rabbitmqUp())) {
    await startRabbitmq().catch((err: Error) => failures.push(`RabbitMQ: ${err.message}`));
  }
  down.clear();
  if (failures.length)
    throw new Error(`shared services are DOWN after the fault suite:\n${failures.join('\n')}`);
}

// Ctrl-C or a crash in the middle of an outage: bring the services back before the process goes.
process.once('exit', () => {
  try {
    if (down.has('postgres')) execFileSync('pg_ctlcluster', pgArgs('start'), { timeout: 60_000 });
  } catch {}
  try {
    if (down.has('rabbitmq')) execFileSync('rabbitmqctl', ['start_app'], { timeout: 60_000 });
  } catch {}
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => process.exit(130));
}
