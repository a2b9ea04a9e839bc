import knex, { type Knex } from 'knex';
import { migrationSource } from './migration-source.ts';

export type Db = Knex;
export type Tx = Knex.Transaction;
/** A query runner: the pool or an open transaction, passed explicitly to repo functions. */
export type Q = Knex | Knex.Transaction;

export function createDb(url: string, poolMax = 10): Db {
  return knex({
    client: 'pg',
    connection: { connectionString: url, application_name: 'messenger' },
    // min 0 so idle connections do not pin a restarted server's dead sockets forever.
    pool: { min: 0, max: poolMax, idleTimeoutMillis: 30_000 },
    acquireConnectionTimeout: 5_000,
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
