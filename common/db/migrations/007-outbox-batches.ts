import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.raw(`
    -- One outbox row per send statement instead of one per event (issue 14): the row lists the
    -- (device, seq, event) of every event the statement appended, in the same order in each
    -- array, so a batch of messages costs PostgreSQL one outbox insert and one delete, not one
    -- each per event. Rows waiting at upgrade become rows of one event.
    ALTER TABLE outbox
      ADD COLUMN device_ids uuid[],
      ADD COLUMN seqs bigint[],
      ADD COLUMN event_ids uuid[],
      ADD COLUMN request_ids text[];
    UPDATE outbox
       SET device_ids = ARRAY[device_id], seqs = ARRAY[seq], event_ids = ARRAY[event_id],
           request_ids = ARRAY[request_id];
    ALTER TABLE outbox
      DROP COLUMN device_id,
      DROP COLUMN seq,
      DROP COLUMN event_id,
      DROP COLUMN request_id,
      ALTER COLUMN device_ids SET NOT NULL,
      ALTER COLUMN seqs SET NOT NULL,
      ALTER COLUMN event_ids SET NOT NULL,
      ALTER COLUMN request_ids SET NOT NULL;
  `);
}

export async function down(db: Knex): Promise<void> {
  await db.raw(`
    CREATE TABLE outbox_events AS
      SELECT o.id, o.created_at, e.device_id, e.seq, e.event_id, e.request_id
        FROM outbox o, unnest(o.device_ids, o.seqs, o.event_ids, o.request_ids)
             AS e(device_id, seq, event_id, request_id);
    DELETE FROM outbox;
    ALTER TABLE outbox
      DROP COLUMN device_ids,
      DROP COLUMN seqs,
      DROP COLUMN event_ids,
      DROP COLUMN request_ids,
      ADD COLUMN device_id uuid NOT NULL,
      ADD COLUMN seq bigint NOT NULL,
      ADD COLUMN event_id uuid NOT NULL,
      ADD COLUMN request_id text;
    INSERT INTO outbox (created_at, device_id, seq, event_id, request_id)
      SELECT created_at, device_id, seq, event_id, request_id FROM outbox_events ORDER BY id, seq;
    DROP TABLE outbox_events;
  `);
}
