import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.raw(`
    -- The listener request that wrote the row, so the sender can log req_id end to end.
    ALTER TABLE outbox ADD COLUMN request_id text;

    -- One row per push attempt, for operators ("why did device X not get event Y?").
    -- Pruned by the cleanup job after DELIVERY_ATTEMPTS_RETENTION_DAYS.
    CREATE TABLE delivery_attempts (
      id           bigserial PRIMARY KEY,
      device_id    uuid NOT NULL,
      seq          bigint NOT NULL,
      event_id     uuid NOT NULL,
      attempt      integer NOT NULL,
      status_code  integer,
      error_class  text,
      duration_ms  integer NOT NULL,
      -- delivered | retry | gone | dead
      outcome      text NOT NULL,
      retry_in_ms  integer,
      request_id   text,
      at           timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX delivery_attempts_device_at ON delivery_attempts (device_id, at);
    CREATE INDEX delivery_attempts_event_id ON delivery_attempts (event_id);
    -- Rows arrive in time order, so a BRIN index serves the prune by age at almost no write cost.
    CREATE INDEX delivery_attempts_at ON delivery_attempts USING brin (at);
  `);
}

export async function down(db: Knex): Promise<void> {
  await db.raw('DROP TABLE IF EXISTS delivery_attempts; ALTER TABLE outbox DROP COLUMN IF EXISTS request_id');
}
