import pg from 'pg';
import { createDb, migrateLatest } from '../common/db/index.ts';
import { testConfig } from './helpers/env.ts';

/** Creates the test database when missing and migrates it, once per run. */
export async function mochaGlobalSetup(): Promise<void> {
  const url = new URL(testConfig().DATABASE_URL);
  const name = url.pathname.slice(1);
  const admin = new pg.Client({
    connectionString: Object.assign(new URL(url), { pathname: '/postgres' }).href,
  });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await admin.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
  } finally {
    await admin.end();
  }
  const db = createDb(url.href, 1);
  try {
    await migrateLatest(db);
  } finally {
    await db.destroy();
  }
}
