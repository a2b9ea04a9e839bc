import type { Q, Tx } from './index.ts';

/** Records who a message was addressed to at send time (see migration 003). */
export async function insertRecipients(trx: Tx, messageId: string, userIds: string[]): Promise<void> {
  const unique = [...new Set(userIds)];
  if (unique.length)
    await trx('message_recipients').insert(unique.map((user_id) => ({ message_id: messageId, user_id })));
}

export async function recipientsOf(q: Q, messageId: string): Promise<string[]> {
  const rows: { user_id: string }[] = await q('message_recipients')
    .select('user_id')
    .where({ message_id: messageId });
  return rows.map((r) => r.user_id);
}

export async function isRecipient(q: Q, messageId: string, userId: string): Promise<boolean> {
  return Boolean(await q('message_recipients').where({ message_id: messageId, user_id: userId }).first());
}
