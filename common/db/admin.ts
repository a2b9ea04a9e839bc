import pg from 'pg';
import { createDb, migrateLatest } from './index.ts';

/** Database lifecycle for scripts and tests (never for request paths): create, recreate, drop. */

/** The same server URL pointing at another database. */
export function withDatabase(url: string, name: string): string {
  return Object.assign(new URL(url), { pathname: `/${encodeURIComponent(name)}` }).href;
}

function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

const quoted = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Runs statements on the server's `postgres` database (CREATE/DROP DATABASE cannot run in the target). */
async function onServer(url: string, ...statements: string[]): Promise<pg.QueryResult[]> {
  const client = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await client.connect();
  try {
    const results: pg.QueryResult[] = [];
    for (const sql of statements) results.push(await client.query(sql));
    return results;
  } finally {
    await client.end();
  }
}

/** Creates the database named in the URL when missing; true when it was created. */
export async function ensureDatabase(url: string): Promise<boolean> {
  const name = databaseName(url);
  const client = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount) return false;
    await client.query(`CREATE DATABASE ${quoted(name)}`);
    return true;
  } finally {
    await client.end();
  }
}

export async function dropDatabase(url: string): Promise<void> {
  await onServer(url, `DROP DATABASE IF EXISTS ${quoted(databaseName(url))} WITH (FORCE)`);
}

/** Applies every pending migration to the database at `url`. */
export async function migrate(url: string): Promise<string[]> {
  const db = createDb(url, 1);
  try {
    return await migrateLatest(db);
  } finally {
    await db.destroy();
  }
}

/** A new, empty, migrated database at `url` (dropped first if it exists). */
export async function freshDatabase(url: string): Promise<void> {
  await dropDatabase(url);
  await onServer(url, `CREATE DATABASE ${quoted(databaseName(url))}`);
  await migrate(url);
}
