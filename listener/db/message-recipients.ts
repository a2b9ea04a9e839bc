import type { Q } from '../../common/db/index.ts';

export async function recipientsOf(q: Q, messageId: string): Promise<string[]> {
  const rows: { user_id: string }[] = await q('message_recipients')
    .select('user_id')
    .where({ message_id: messageId });
  return rows.map((r) => r.user_id);
}

export async function isRecipient(q: Q, messageId: string, userId: string): Promise<boolean> {
  return Boolean(await q('message_recipients').where({ message_id: messageId, user_id: userId }).first());
}
