import { readdir } from 'node:fs/promises';
import type { Knex } from 'knex';

const dir = new URL('./migrations/', import.meta.url);

interface Migration {
  up(db: Knex): Promise<void>;
  down?(db: Knex): Promise<void>;
}

/**
 * Numbered files in ./migrations (`001-core.ts`, …) applied in name order, run from code (no
 * knexfile). Built to dist/ they are `.js`: a migration keeps its `.ts` name either way, the name
 * knex_migrations records, so a database migrated by one form is current for the other.
 */
const files = new Map<string, string>();
export const migrationSource: Knex.MigrationSource<string> = {
  async getMigrations() {
    for (const f of await readdir(dir)) {
      const m = /^(\d{3}-[\w-]+)\.(ts|js)$/.exec(f);
      const name = `${m?.[1]}.ts`;
      if (m && (m[2] === 'ts' || !files.has(name))) files.set(name, f);
    }
    return [...files.keys()].sort();
  },
  getMigrationName: (name) => name,
  async getMigration(name) {
    const mod = (await import(new URL(files.get(name) ?? name, dir).href)) as Migration;
    return { up: mod.up, down: mod.down ?? (async () => {}) };
  },
};
