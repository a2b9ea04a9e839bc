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

    -- The direct half of the contacts rule (listener/presence/contacts.ts): users between whom
    -- a direct message was sent, one row per direction so a user's contacts are one index range.
    -- The send statement adds the pair (ON CONFLICT DO NOTHING: one index probe per message once
    -- it exists), so a presence check costs the user's contacts, never their message history.
    CREATE TABLE direct_contacts (
      user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      contact_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      PRIMARY KEY (user_id, contact_id)
    );
    CREATE INDEX direct_contacts_contact ON direct_contacts (contact_id);
    INSERT INTO direct_contacts (user_id, contact_id)
    SELECT DISTINCT p.a, p.b
      FROM messages m JOIN message_recipients r ON r.message_id = m.id
     CROSS JOIN LATERAL (VALUES (m.sender_user_id, r.user_id), (r.user_id, m.sender_user_id)) AS p(a, b)
     WHERE m.group_id IS NULL AND r.user_id <> m.sender_user_id
    ON CONFLICT DO NOTHING;
  `);
}

export async function down(db: Knex): Promise<void> {
  await db.raw('DROP TABLE IF EXISTS direct_contacts; DROP TABLE IF EXISTS user_presence');
}
