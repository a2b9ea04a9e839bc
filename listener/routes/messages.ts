import { z } from 'zod';
import { eventPage } from '../http/event-schemas.ts';
import { route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import { ackEvents, pullEvents, sendMessage } from '../use-cases/messages.ts';

export const MAX_ENVELOPES = 1000;
const MAX_CIPHERTEXT_BYTES = 64 * 1024;

/**
 * The envelopes of a send or an edit. `device_id` is an opaque string: one that names no device
 * of the conversation is 409 `extra_devices` like any other stranger, not a 400.
 */
export const envelopes = z
  .array(
    z.strictObject({
      device_id: s.deviceRef,
      nonce: s.base64Bytes({ exact: 24 }),
      ciphertext: s.base64Bytes({ min: 1, max: MAX_CIPHERTEXT_BYTES }),
    }),
  )
  .max(MAX_ENVELOPES, `at most ${MAX_ENVELOPES} envelopes`);

const sendBody = z
  .strictObject({
    to: s.username.optional(),
    group_id: s.id.optional(),
    client_message_id: z.string().min(1).max(128).optional(),
    envelopes,
    file_ids: z
      .array(s.id)
      .max(100)
      .refine((ids) => new Set(ids).size === ids.length, 'duplicate file id')
      .optional(),
  })
  .refine((b) => (b.to === undefined) !== (b.group_id === undefined), {
    message: 'exactly one of `to` and `group_id`',
    path: ['to'],
  })
  // Files referenced by a message nobody can read would be kept from collection forever.
  .refine((b) => !b.file_ids?.length || b.envelopes.length > 0, {
    message: 'a message with files needs at least one envelope',
    path: ['envelopes'],
  });

const sent = z.object({ message_id: s.id, sent_at: s.timestamp }).meta({ id: 'Sent' });

export const messageRoutes = [
  route({
    method: 'post',
    path: '/api/messages',
    tag: 'messages',
    summary: 'Send an end-to-end encrypted message: one envelope per receiving device',
    auth: true,
    body: sendBody,
    responses: {
      200: { description: 'replay of an earlier send with the same `client_message_id`', schema: sent },
      201: { description: 'stored durably; will reach every device', schema: sent },
      404: { description: 'unknown recipient, group or file' },
      409: {
        description: '`device_mismatch` with `missing_devices` and `extra_devices`; nothing is stored',
        schema: s.deviceMismatch,
      },
      429: {
        description:
          '`recipient_inbox_full`: a receiving device holds INBOX_MAX_EVENTS undelivered events; nothing is stored',
        errors: ['recipient_inbox_full', 'rate_limited'],
      },
    },
    async handle(ctx, { body }) {
      const { replay, sent } = await sendMessage(ctx.deps, ctx.state, {
        to: body.to,
        groupId: body.group_id,
        clientMessageId: body.client_message_id,
        envelopes: body.envelopes,
        fileIds: body.file_ids,
      });
      ctx.status = replay ? 200 : 201;
      ctx.body = sent;
    },
  }),
  route({
    method: 'get',
    path: '/api/messages',
    tag: 'messages',
    summary: "Pull this device's undelivered events after a cursor",
    auth: true,
    query: z.strictObject({
      after: s.seqParam.optional(),
      limit: z
        .string()
        .regex(/^\d{1,4}$/, 'an integer 1..500')
        .transform(Number)
        .pipe(z.number().int().min(1).max(500))
        .optional(),
    }),
    responses: {
      200: {
        description: 'a page of events, ascending by `seq`',
        schema: eventPage,
      },
    },
    async handle(ctx, { query }) {
      const page = await pullEvents(ctx.deps, ctx.state, {
        after: query.after ?? 0,
        limit: query.limit ?? 100,
      });
      // Events are stored as their exact JSON; splice them instead of parsing and re-serialising.
      ctx.type = 'application/json';
      ctx.body = `{"events":[${page.bodies.join(',')}],"next_after":${page.nextAfter},"has_more":${page.hasMore}}`;
    },
  }),
  route({
    method: 'post',
    path: '/api/messages/ack',
    tag: 'messages',
    summary: "Acknowledge (remove) this device's events up to `up_to`",
    auth: true,
    body: z.strictObject({ up_to: s.seq }),
    responses: { 204: { description: 'acknowledged' } },
    async handle(ctx, { body }) {
      await ackEvents(ctx.deps, ctx.state, body.up_to);
      ctx.status = 204;
    },
  }),
];
