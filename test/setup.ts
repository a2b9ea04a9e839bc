import { ensureDatabase, migrate } from '../common/db/admin.ts';
import { testConfig } from './helpers/env.ts';

/** Creates the test database when missing and migrates it, once per run. */
export async function mochaGlobalSetup(): Promise<void> {
  const url = testConfig().DATABASE_URL;
  await ensureDatabase(url);
  await migrate(url);
}
