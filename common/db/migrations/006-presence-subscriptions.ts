import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.raw(`
    -- Presence subscriptions (issue 17): the online/offline state last announced per user. A
    -- listener changes it under a per-user advisory lock after writing or deleting stream rows, so
    -- exactly one listener sees (and publishes) each transition, whichever listener holds the
    -- sockets. left_at: the last stream closed then; the user goes offline PRESENCE_GRACE_MS later
    -- unless a stream opens meanwhile (the sweep settles it if the closing listener died).
    CREATE TABLE user_presence (
      user_id uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
      online  boolean NOT NULL,
      since   timestamptz NOT NULL DEFAULT now(),
      left_at timestamptz
    );
    CREATE INDEX user_presence_left_at ON user_presence (left_at) WHERE left_at IS NOT NULL;

    -- The contacts rule reads whom a user sent direct messages to: without this index, that is a
    -- scan of all messages. (Messages sent to a user are found through message_recipients_user.)
    CREATE INDEX messages_direct_sender ON messages (sender_user_id) WHERE group_id IS NULL;
  `);
}

export async function down(db: Knex): Promise<void> {
  await db.raw('DROP INDEX IF EXISTS messages_direct_sender; DROP TABLE IF EXISTS user_presence');
}
