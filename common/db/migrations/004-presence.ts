import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.raw(`
    -- One row per open live stream (WebSocket). Each listener refreshes heartbeat_at of its own
    -- sockets; a user is online while a row with a fresh heartbeat exists, so the sockets of a
    -- listener that was killed stop counting once their heartbeat is older than the expiry.
    CREATE TABLE stream_presence (
      stream_id    uuid PRIMARY KEY,
      instance_id  text NOT NULL,
      device_id    uuid NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
      user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      connected_at timestamptz NOT NULL DEFAULT now(),
      heartbeat_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX stream_presence_user ON stream_presence (user_id, heartbeat_at);
    CREATE INDEX stream_presence_heartbeat ON stream_presence (heartbeat_at);
    CREATE INDEX stream_presence_device ON stream_presence (device_id);
  `);
}

export async function down(db: Knex): Promise<void> {
  await db.raw('DROP TABLE IF EXISTS stream_presence');
}
