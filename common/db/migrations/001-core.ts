import type { Knex } from 'knex';

export async function up(db: Knex): Promise<void> {
  await db.raw(`
    CREATE TABLE users (
      id            uuid PRIMARY KEY,
      username      text NOT NULL UNIQUE,
      password_hash text NOT NULL,
      phone_number  text UNIQUE,
      display_name  text,
      created_at    timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE devices (
      id             uuid PRIMARY KEY,
      user_id        uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      public_key     text NOT NULL,
      name           text,
      user_address   text,
      -- last seq handed out for this device; bumped under the row lock in the send transaction
      last_seq       bigint NOT NULL DEFAULT 0,
      created_at     timestamptz NOT NULL DEFAULT now(),
      last_active_at timestamptz NOT NULL DEFAULT now(),
      last_ip        text,
      user_agent     text
    );
    CREATE INDEX devices_user_id ON devices (user_id);

    -- One session per device; the token itself is never stored, only its SHA-256.
    CREATE TABLE sessions (
      token_hash   bytea PRIMARY KEY,
      device_id    uuid NOT NULL UNIQUE REFERENCES devices(id) ON DELETE CASCADE,
      user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      created_at   timestamptz NOT NULL DEFAULT now(),
      expires_at   timestamptz NOT NULL
    );
    CREATE INDEX sessions_user_id ON sessions (user_id);
    CREATE INDEX sessions_expires_at ON sessions (expires_at);

    -- No foreign keys to users/devices: a message outlives its sender's account.
    CREATE TABLE messages (
      id                uuid PRIMARY KEY,
      sender_user_id    uuid NOT NULL,
      sender_device_id  uuid NOT NULL,
      group_id          uuid,
      client_message_id text,
      sent_at           timestamptz NOT NULL DEFAULT now(),
      edited_at         timestamptz,
      deleted_at        timestamptz
    );
    CREATE UNIQUE INDEX messages_idempotency ON messages (sender_device_id, client_message_id)
      WHERE client_message_id IS NOT NULL;
    CREATE INDEX messages_sent_at ON messages (sent_at);

    -- Undelivered events per device. body is the exact event JSON that is pulled, streamed and pushed
    -- (and signed), so it is serialised once, at send time.
    CREATE TABLE inbox (
      device_id  uuid NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
      seq        bigint NOT NULL,
      event_id   uuid NOT NULL,
      type       text NOT NULL,
      message_id uuid,
      body       text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      PRIMARY KEY (device_id, seq)
    );
    CREATE INDEX inbox_expires_at ON inbox (expires_at);
    CREATE INDEX inbox_message_id ON inbox (message_id) WHERE message_id IS NOT NULL;

    -- Deliveries waiting to be published to RabbitMQ (transactional outbox).
    CREATE TABLE outbox (
      id         bigserial PRIMARY KEY,
      device_id  uuid NOT NULL,
      seq        bigint NOT NULL,
      event_id   uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );

    -- Failed logins per username, shared by every listener.
    CREATE TABLE login_failures (
      username     text PRIMARY KEY,
      failures     integer NOT NULL,
      window_start timestamptz NOT NULL DEFAULT now()
    );
  `);
}

export async function down(db: Knex): Promise<void> {
  await db.raw(
    'DROP TABLE IF EXISTS login_failures, outbox, inbox, messages, sessions, devices, users CASCADE',
  );
}
