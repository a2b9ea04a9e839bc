import type { Tx } from '../../common/db/index.ts';
import { filesOfMessage, unlinkFiles } from '../db/files.ts';
import { lockGroup } from '../db/groups.ts';
import {
  dropUndeliveredCopies,
  findMessage,
  lockMessage,
  markDeleted,
  markEdited,
} from '../db/message-changes.ts';
import { isRecipient, recipientsOf } from '../db/message-recipients.ts';
import type { MessageRow } from '../db/messages.ts';
import type { Deps } from '../deps.ts';
import { notFound } from '../errors.ts';
import { withEvents } from '../messaging/append.ts';
import { checkCoverage, type Envelope } from '../messaging/coverage.ts';
import { devicesOf, fanOut, messageDeleted, messageEdited, receipt } from '../messaging/events.ts';
import type { Actor } from './caller.ts';

/** The user's own, not deleted message, locked until the transaction ends; 404 otherwise. */
async function lockOwnMessage(trx: Tx, userId: string, id: string | null): Promise<MessageRow> {
  const m = id === null ? undefined : await lockMessage(trx, id);
  if (!m || m.deleted_at || m.sender_user_id !== userId) throw notFound('no such message');
  return m;
}

/**
 * Replaces the text of the actor's message: envelopes for the conversation's devices as when
 * sending (the 1:1 recipient, or the group's current members) plus the actor's other devices.
 */
export async function editMessage(
  deps: Deps,
  actor: Actor,
  input: { messageId: string | null; envelopes: Envelope[] },
): Promise<{ message_id: string; sent_at: string; edited_at: string }> {
  const { auth } = actor;
  const result = await withEvents(deps, actor.requestId, async (trx, append) => {
    const m = await lockOwnMessage(trx, auth.userId, input.messageId);
    let recipients: string[];
    if (m.group_id) {
      const group = await lockGroup(trx, m.group_id, 'share');
      if (!group?.members.includes(auth.userId)) throw notFound('no such message');
      recipients = group.members;
    } else {
      recipients = await recipientsOf(trx, m.id);
    }
    await checkCoverage(trx, recipients, auth, input.envelopes);
    const editedAt = (await markEdited(trx, m.id)).toISOString();
    const fileIds = await filesOfMessage(trx, m.id);
    await append(
      input.envelopes.map((e) => ({
        device_id: e.device_id,
        event: messageEdited(auth, m, editedAt, fileIds, e),
      })),
    );
    return { message_id: m.id, sent_at: m.sent_at.toISOString(), edited_at: editedAt };
  });
  actor.log.info({ msg_id: result.message_id, devices: input.envelopes.length }, 'message edited');
  return result;
}

/**
 * Deletes the actor's message: its recipients and the actor's other devices get
 * `message.deleted`, its undelivered copies are dropped and its files are no longer shared.
 */
export async function deleteMessage(deps: Deps, actor: Actor, messageId: string | null): Promise<void> {
  const { auth } = actor;
  await withEvents(deps, actor.requestId, async (trx, append) => {
    const m = await lockOwnMessage(trx, auth.userId, messageId);
    await markDeleted(trx, m.id);
    const dropped = await dropUndeliveredCopies(trx, m.id);
    await unlinkFiles(trx, m.id);
    // Everyone who may hold a copy: the recipients at send time, and for a group also whoever
    // joined since (they may have received an edit), plus the sender's other devices.
    const users = [...(await recipientsOf(trx, m.id)), auth.userId];
    if (m.group_id) {
      const group = await lockGroup(trx, m.group_id, 'share');
      users.push(...(group?.members ?? []));
    }
    const devices = await devicesOf(trx, users, auth.deviceId);
    await append(fanOut(devices, messageDeleted(auth, m)));
    actor.log.info({ msg_id: m.id, dropped }, 'message deleted');
  });
}

/** Tells every device of the sender that a recipient (when it was sent) got or read the message. */
export async function sendReceipt(
  deps: Deps,
  actor: Actor,
  input: { messageId: string | null; type: 'delivered' | 'read' },
): Promise<void> {
  const { auth } = actor;
  const { db } = deps;
  const m = input.messageId === null ? undefined : await findMessage(db, input.messageId);
  if (!m || m.deleted_at || !(await isRecipient(db, m.id, auth.userId))) throw notFound('no such message');
  await withEvents(deps, actor.requestId, async (trx, append) => {
    const devices = await devicesOf(trx, [m.sender_user_id], auth.deviceId);
    await append(fanOut(devices, receipt(auth, m, input.type)));
  });
}
