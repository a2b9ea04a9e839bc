import type { SqlPart } from './inbox.ts';
import type { Q } from './index.ts';

export interface MessageRow {
  id: string;
  sender_user_id: string;
  sender_device_id: string;
  group_id: string | null;
  client_message_id: string | null;
  sent_at: Date;
  edited_at: Date | null;
  deleted_at: Date | null;
}

export async function insertMessage(
  q: Q,
  row: Pick<MessageRow, 'id' | 'sender_user_id' | 'sender_device_id' | 'group_id' | 'client_message_id'>,
): Promise<Date> {
  const [inserted] = await q('messages').insert(row).returning<{ sent_at: Date }[]>('sent_at');
  if (!inserted) throw new Error('insert returned no row');
  return inserted.sent_at;
}

/**
 * The message row and its recipients as CTEs (`message`, `recipients`) for appendEvents to run in
 * the same statement as the events: a direct send is then one round trip with no explicit
 * transaction. `sent_at` comes from the caller, because the events carry it.
 */
export function messageInsert(
  row: Pick<
    MessageRow,
    'id' | 'sender_user_id' | 'sender_device_id' | 'group_id' | 'client_message_id' | 'sent_at'
  >,
  recipientUserIds: string[],
): SqlPart {
  return {
    sql: `message AS (
       INSERT INTO messages (id, sender_user_id, sender_device_id, group_id, client_message_id, sent_at)
       VALUES (?, ?, ?, ?, ?, ?)),
     recipients AS (
       INSERT INTO message_recipients (message_id, user_id) SELECT ?, unnest(?::uuid[]))`,
    bindings: [
      row.id,
      row.sender_user_id,
      row.sender_device_id,
      row.group_id,
      row.client_message_id,
      row.sent_at,
      row.id,
      [...new Set(recipientUserIds)],
    ],
  };
}

/** A message sent earlier by this device with this client id, within the idempotency window. */
export async function findByClientMessageId(
  q: Q,
  deviceId: string,
  clientMessageId: string,
): Promise<Pick<MessageRow, 'id' | 'sent_at'> | undefined> {
  return q<MessageRow>('messages')
    .select('id', 'sent_at')
    .where({ sender_device_id: deviceId, client_message_id: clientMessageId })
    .andWhere('sent_at', '>', q.raw(`now() - interval '24 hours'`))
    .first();
}

/** Frees client ids older than the 24 h window so they may be reused. */
export async function releaseOldClientMessageIds(q: Q): Promise<number> {
  return q('messages')
    .whereNotNull('client_message_id')
    .andWhere('sent_at', '<=', q.raw(`now() - interval '24 hours'`))
    .update({ client_message_id: null });
}
