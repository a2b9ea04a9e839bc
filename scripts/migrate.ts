import { loadConfig } from '../common/config.ts';
import { createDb, migrateLatest } from '../common/db/index.ts';

const config = loadConfig();
const db = createDb(config.DATABASE_URL, 1);
try {
  const applied = await migrateLatest(db);
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
} finally {
  await db.destroy();
}
