import { createHash } from 'node:crypto';
import type { Db } from '../../common/db/index.ts';

export interface DbState {
  counts: Record<string, number>;
  hash: string;
}

/**
 * What is stored for some users: their row counts and a hash of their rows in every table a
 * request could change. Columns that a mere authenticated read updates (activity, sliding
 * session expiry) are left out, and so is the outbox, which sender workers drain.
 */
export async function dbState(db: Db, userIds: string[]): Promise<DbState> {
  const devices = db('devices').select('id').whereIn('user_id', userIds);
  const tables: Record<string, Promise<unknown[]>> = {
    users: db('users')
      .select('id', 'username', 'password_hash', 'phone_number', 'display_name')
      .whereIn('id', userIds)
      .orderBy('id'),
    devices: db('devices')
      .select('id', 'user_id', 'public_key', 'name', 'user_address', 'last_seq', 'created_at')
      .whereIn('user_id', userIds)
      .orderBy('id'),
    sessions: db('sessions')
      .select(db.raw("encode(token_hash, 'hex') as token_hash"), 'device_id', 'user_id', 'created_at')
      .whereIn('user_id', userIds)
      .orderBy('device_id'),
    inbox: db('inbox')
      .select('device_id', 'seq', 'event_id', 'type', 'body', 'expires_at')
      .whereIn('device_id', devices)
      .orderBy(['device_id', 'seq']),
    messages: db('messages')
      .select('id', 'sender_device_id', 'group_id', 'client_message_id', 'edited_at', 'deleted_at')
      .whereIn('sender_user_id', userIds)
      .orderBy('id'),
  };
  const counts: Record<string, number> = {};
  const hash = createHash('sha256');
  for (const [name, rows] of Object.entries(tables)) {
    const list = await rows;
    counts[name] = list.length;
    hash.update(`${name}:${JSON.stringify(list)}\n`);
  }
  return { counts, hash: hash.digest('hex') };
}

/** Events waiting in the outbox (a row lists the events of one statement), of these devices only when given. */
export async function outboxEvents(db: Db, deviceIds?: string[]): Promise<number> {
  const { rows } = await db.raw<{ rows: { n: string }[] }>(
    `SELECT count(*) AS n FROM outbox, unnest(device_ids) AS d(id)${deviceIds ? ' WHERE d.id = ANY(?::uuid[])' : ''}`,
    deviceIds ? [deviceIds] : [],
  );
  return Number(rows[0]?.n);
}
