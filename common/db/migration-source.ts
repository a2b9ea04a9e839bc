import { readdir } from 'node:fs/promises';
import type { Knex } from 'knex';

const dir = new URL('./migrations/', import.meta.url);

interface Migration {
  up(db: Knex): Promise<void>;
  down?(db: Knex): Promise<void>;
}

/** Numbered files in ./migrations (`001-core.ts`, …) applied in name order, run from code (no knexfile). */
export const migrationSource: Knex.MigrationSource<string> = {
  async getMigrations() {
    const files = await readdir(dir);
    return files.filter((f) => /^\d{3}-[\w-]+\.ts$/.test(f)).sort();
  },
  getMigrationName: (name) => name,
  async getMigration(name) {
    const mod = (await import(new URL(name, dir).href)) as Migration;
    return { up: mod.up, down: mod.down ?? (async () => {}) };
  },
};
