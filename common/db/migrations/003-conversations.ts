import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.raw(`
    CREATE TABLE groups (
      id         uuid PRIMARY KEY,
      name       text NOT NULL,
      is_public  boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    -- Public search pages by (lower(name), id).
    CREATE INDEX groups_public_name ON groups (lower(name), id) WHERE is_public;

    -- The owner is not stored: it is the longest-standing member (lowest seniority), so when the
    -- owner leaves, or their account is deleted, ownership passes to the oldest remaining member.
    CREATE TABLE group_members (
      group_id   uuid NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
      user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      seniority  bigserial NOT NULL,
      joined_at  timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (group_id, user_id)
    );
    CREATE INDEX group_members_user ON group_members (user_id);
    CREATE INDEX group_members_seniority ON group_members (group_id, seniority);

    -- Who a message was addressed to when it was sent (the 1:1 recipient, or the group's members
    -- except the sender): the users allowed to send receipts and to download its files.
    CREATE TABLE message_recipients (
      message_id uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
      user_id    uuid NOT NULL,
      PRIMARY KEY (message_id, user_id)
    );
    CREATE INDEX message_recipients_user ON message_recipients (user_id);

    -- Uploaded (client-encrypted) files. size/sha256 are NULL while the upload is in progress.
    CREATE TABLE files (
      id          uuid PRIMARY KEY,
      uploader_id uuid NOT NULL,
      size        bigint,
      sha256      text,
      created_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX files_created_at ON files (created_at);

    -- File bytes in bounded chunks, so any listener can stream any file without buffering it.
    CREATE TABLE file_chunks (
      file_id uuid NOT NULL REFERENCES files(id) ON DELETE CASCADE,
      idx     integer NOT NULL,
      data    bytea NOT NULL,
      PRIMARY KEY (file_id, idx)
    );

    -- Message -> file references; a file nobody references is collected after FILE_GC_AGE_SECONDS.
    CREATE TABLE message_files (
      message_id uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
      file_id    uuid NOT NULL REFERENCES files(id),
      PRIMARY KEY (message_id, file_id)
    );
    CREATE INDEX message_files_file ON message_files (file_id);
  `);
}

export async function down(db: Knex): Promise<void> {
  await db.raw(
    'DROP TABLE IF EXISTS message_files, file_chunks, files, message_recipients, group_members, groups CASCADE',
  );
}
