import { z } from 'zod';
import { filesOfMessage, unlinkFiles } from '../../common/db/files.ts';
import { lockGroup } from '../../common/db/groups.ts';
import type { Tx } from '../../common/db/index.ts';
import {
  dropUndeliveredCopies,
  findMessage,
  lockMessage,
  markDeleted,
  markEdited,
} from '../../common/db/message-changes.ts';
import { isRecipient, recipientsOf } from '../../common/db/message-recipients.ts';
import type { MessageRow } from '../../common/db/messages.ts';
import { notFound } from '../../common/errors.ts';
import { type Ctx, route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import { withEvents } from '../messaging/append.ts';
import { checkCoverage } from '../messaging/coverage.ts';
import { devicesOf, fanOut, sender } from '../messaging/events.ts';
import { envelopes } from './messages.ts';

const params = z.strictObject({ message_id: s.ref });

/** The caller's own, not deleted message, locked until the transaction ends; 404 otherwise. */
async function lockOwnMessage(ctx: Ctx, trx: Tx, id: string | null): Promise<MessageRow> {
  const m = id === null ? undefined : await lockMessage(trx, id);
  if (!m || m.deleted_at || m.sender_user_id !== ctx.state.auth.userId) throw notFound('no such message');
  return m;
}

export const messageChangeRoutes = [
  route({
    method: 'put',
    path: '/api/messages/:message_id',
    tag: 'messages',
    summary:
      "Edit your message from any of your devices: envelopes for the conversation's devices as when sending (the 1:1 recipient, or the group's current members) plus your other devices",
    auth: true,
    params,
    body: z.strictObject({ envelopes: envelopes }),
    responses: {
      200: {
        description: 'recipients and your other devices get `message.edited`',
        schema: z.object({ message_id: s.id, sent_at: s.timestamp, edited_at: s.timestamp }),
      },
      404: { description: 'no such message of yours, deleted, or you left its group' },
      409: { description: '`device_mismatch` as for sending', schema: s.deviceMismatch },
    },
    async handle(ctx, { params, body }) {
      const { auth } = ctx.state;
      const result = await withEvents(ctx, async (trx, append) => {
        const m = await lockOwnMessage(ctx, trx, params.message_id);
        let recipients: string[];
        if (m.group_id) {
          const group = await lockGroup(trx, m.group_id, 'share');
          if (!group?.members.includes(auth.userId)) throw notFound('no such message');
          recipients = group.members;
        } else {
          recipients = await recipientsOf(trx, m.id);
        }
        await checkCoverage(trx, recipients, auth, body.envelopes);
        const editedAt = (await markEdited(trx, m.id)).toISOString();
        const fileIds = await filesOfMessage(trx, m.id);
        const from = sender(auth);
        const events = body.envelopes.map((e) => ({
          device_id: e.device_id,
          event: {
            type: 'message.edited' as const,
            message_id: m.id,
            group_id: m.group_id,
            sent_at: m.sent_at.toISOString(),
            edited_at: editedAt,
            from,
            nonce: e.nonce,
            ciphertext: e.ciphertext,
            file_ids: fileIds,
          },
        }));
        await append(events);
        return { message_id: m.id, sent_at: m.sent_at.toISOString(), edited_at: editedAt };
      });
      ctx.state.log.info({ msg_id: result.message_id, devices: body.envelopes.length }, 'message edited');
      ctx.body = result;
    },
  }),
  route({
    method: 'delete',
    path: '/api/messages/:message_id',
    tag: 'messages',
    summary:
      'Delete your message: its recipients and your other devices get `message.deleted`, its undelivered copies are dropped and its files are no longer shared (they are collected like unreferenced uploads)',
    auth: true,
    params,
    responses: {
      204: { description: 'deleted' },
      404: { description: 'no such message of yours, or already deleted' },
    },
    async handle(ctx, { params }) {
      const { auth } = ctx.state;
      await withEvents(ctx, async (trx, append) => {
        const m = await lockOwnMessage(ctx, trx, params.message_id);
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
        const event = {
          type: 'message.deleted' as const,
          message_id: m.id,
          group_id: m.group_id,
          sent_at: m.sent_at.toISOString(),
          from: sender(auth),
          nonce: null,
          ciphertext: null,
          file_ids: [],
        };
        await append(fanOut(devices, event));
        ctx.state.log.info({ msg_id: m.id, dropped }, 'message deleted');
      });
      ctx.status = 204;
    },
  }),
  route({
    method: 'post',
    path: '/api/messages/:message_id/receipts',
    tag: 'messages',
    summary:
      "Tell the sender a message was delivered to or read by you (a recipient when it was sent): every device of the sender gets a `receipt` event, whose `sent_at` is the receipt's time",
    auth: true,
    params,
    body: z.strictObject({ type: z.enum(['delivered', 'read']) }),
    responses: {
      204: { description: 'forwarded' },
      404: { description: 'no such message, deleted, or not sent to you' },
    },
    async handle(ctx, { params, body }) {
      const { auth } = ctx.state;
      const { db } = ctx.deps;
      const m = params.message_id === null ? undefined : await findMessage(db, params.message_id);
      if (!m || m.deleted_at || !(await isRecipient(db, m.id, auth.userId)))
        throw notFound('no such message');
      await withEvents(ctx, async (trx, append) => {
        const devices = await devicesOf(trx, [m.sender_user_id], auth.deviceId);
        const event = {
          type: 'receipt' as const,
          message_id: m.id,
          group_id: m.group_id,
          sent_at: new Date().toISOString(),
          from: sender(auth),
          nonce: null,
          ciphertext: null,
          file_ids: [],
          receipt: body.type,
        };
        await append(fanOut(devices, event));
      });
      ctx.status = 204;
    },
  }),
];
