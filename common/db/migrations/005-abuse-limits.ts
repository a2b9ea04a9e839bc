import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.raw(`
    -- Failed-login budgets (issue 16): one row per (username, place) — the client address, an IPv6
    -- /64 — plus one per username with source '*' for the slower ceiling over all places. The
    -- counters are short-lived; the old per-username rows are dropped with the old table.
    DROP TABLE login_failures;
    CREATE TABLE login_failures (
      username     text NOT NULL,
      source       text NOT NULL,
      failures     integer NOT NULL,
      window_start timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (username, source)
    );
    CREATE INDEX login_failures_window ON login_failures (window_start);

    -- Membership changes per group and minute (a fixed window on the group row, which every
    -- change locks FOR UPDATE anyway).
    ALTER TABLE groups
      ADD COLUMN changes_window_start timestamptz NOT NULL DEFAULT now(),
      ADD COLUMN changes_in_window integer NOT NULL DEFAULT 0;

    -- The cleanup job expires devices unseen for DEVICE_INACTIVE_DAYS.
    CREATE INDEX devices_last_active_at ON devices (last_active_at);
  `);
}

export async function down(db: Knex): Promise<void> {
  await db.raw(`
    DROP INDEX IF EXISTS devices_last_active_at;
    ALTER TABLE groups DROP COLUMN IF EXISTS changes_window_start, DROP COLUMN IF EXISTS changes_in_window;
    DROP TABLE IF EXISTS login_failures;
    CREATE TABLE login_failures (
      username     text PRIMARY KEY,
      failures     integer NOT NULL,
      window_start timestamptz NOT NULL DEFAULT now()
    );
  `);
}
