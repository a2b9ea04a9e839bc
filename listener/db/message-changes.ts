import type { Q, Tx } from '../../common/db/index.ts';
import type { MessageRow } from './messages.ts';

/** The message, locked against concurrent edits and deletes until the transaction ends. */
export async function lockMessage(trx: Tx, id: string): Promise<MessageRow | undefined> {
  return trx<MessageRow>('messages').where({ id }).forUpdate().first();
}

export async function findMessage(q: Q, id: string): Promise<MessageRow | undefined> {
  return q<MessageRow>('messages').where({ id }).first();
}

export async function markEdited(trx: Tx, id: string): Promise<Date> {
  const [row] = await trx('messages')
    .where({ id })
    .update({ edited_at: trx.fn.now() })
    .returning<{ edited_at: Date }[]>('edited_at');
  if (!row) throw new Error('update returned no row');
  return row.edited_at;
}

export async function markDeleted(trx: Tx, id: string): Promise<void> {
  await trx('messages').where({ id }).update({ deleted_at: trx.fn.now() });
}

/**
 * Drops the still undelivered copies (original and edits) of a deleted message from every
 * inbox. Their outbox rows stay; the sender finds no inbox row for them and skips them.
 */
export async function dropUndeliveredCopies(trx: Tx, messageId: string): Promise<number> {
  return trx('inbox')
    .where({ message_id: messageId })
    .whereIn('type', ['message', 'message.edited'])
    .delete();
}
