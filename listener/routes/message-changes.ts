import { z } from 'zod';
import { route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import { deleteMessage, editMessage, sendReceipt } from '../use-cases/message-changes.ts';
import { envelopes } from './messages.ts';

const params = z.strictObject({ message_id: s.ref });

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
      ctx.body = await editMessage(ctx.deps, ctx.state, {
        messageId: params.message_id,
        envelopes: body.envelopes,
      });
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
      await deleteMessage(ctx.deps, ctx.state, params.message_id);
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
      await sendReceipt(ctx.deps, ctx.state, { messageId: params.message_id, type: body.type });
      ctx.status = 204;
    },
  }),
];
