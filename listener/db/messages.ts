import type { Q } from '../../common/db/index.ts';

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

/**
 * Frees this device's client id when its message is past the 24 h window but not yet released
 * by the cleanup job, so the id can be used again at once. True when one was freed.
 */
export async function releaseClientMessageId(
  q: Q,
  deviceId: string,
  clientMessageId: string,
): Promise<boolean> {
  const n = await q('messages')
    .where({ sender_device_id: deviceId, client_message_id: clientMessageId })
    .andWhere('sent_at', '<=', q.raw(`now() - interval '24 hours'`))
    .update({ client_message_id: null });
  return n > 0;
}

/** Frees client ids older than the 24 h window so they may be reused. */
export async function releaseOldClientMessageIds(q: Q): Promise<number> {
  return q('messages')
    .whereNotNull('client_message_id')
    .andWhere('sent_at', '<=', q.raw(`now() - interval '24 hours'`))
    .update({ client_message_id: null });
}
