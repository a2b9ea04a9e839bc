import knex, { type Knex } from 'knex';
import type { Logger } from '../log.ts';
import { migrationSource } from './migration-source.ts';

export type Db = Knex;
export type Tx = Knex.Transaction;
/** A query runner: the pool or an open transaction, passed explicitly to repo functions. */
export type Q = Knex | Knex.Transaction;

/**
 * knex prints its warnings with console.log — while PostgreSQL restarts, one multi-line
 * "Acquire connection error" + stack per failed connect, breaking the one-JSON-object-per-line
 * log. With `log` they go there instead: first line only, and connect failures at debug (the
 * request or job that needed the connection reports the outage itself).
 */
function knexLog(log: Logger): Knex.Logger {
  const first = (m: unknown) => String(m).split('\n')[0];
  return {
    warn: (m) => {
      const detail = first(m);
      if (detail?.startsWith('Acquire connection error')) log.debug({ detail }, 'knex warning');
      else log.warn({ detail }, 'knex warning');
    },
    error: (m) => log.error({ detail: first(m) }, 'knex error'),
    deprecate: (m) => log.warn({ detail: first(m) }, 'knex deprecation'),
    debug: (m) => log.debug({ detail: first(m) }, 'knex debug'),
  };
}

export function createDb(url: string, poolMax = 10, log?: Logger): Db {
  return knex({
    client: 'pg',
    connection: { connectionString: url, application_name: 'messenger' },
    // min 0 so idle connections do not pin a restarted server's dead sockets forever.
    pool: { min: 0, max: poolMax, idleTimeoutMillis: 30_000 },
    acquireConnectionTimeout: 5_000,
    ...(log ? { log: knexLog(log) } : {}),
  });
}

export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}

/** Thrown by pg on unique violations; repos translate it into a domain conflict. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}
