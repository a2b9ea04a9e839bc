import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { deviceKeysByUsername } from '../../common/db/devices.ts';
import { linkFiles, lockOwnFiles } from '../../common/db/files.ts';
import { lockGroup } from '../../common/db/groups.ts';
import { ackInbox, appendEvents, readInbox } from '../../common/db/inbox.ts';
import { isUniqueViolation, type Q } from '../../common/db/index.ts';
import { findByClientMessageId, messageInsert } from '../../common/db/messages.ts';
import { notFound } from '../../common/errors.ts';
import type { PendingEvent } from '../../common/events.ts';
import { eventPage } from '../http/event-schemas.ts';
import { type Ctx, route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import { checkCoverage, checkCoverageOf, type Envelope } from '../messaging/coverage.ts';

export const MAX_ENVELOPES = 1000;
export const MAX_CIPHERTEXT_BYTES = 64 * 1024;

export const envelopes = z
  .array(
    z.strictObject({
      device_id: s.id,
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
  });

const sent = z.object({ message_id: s.id, sent_at: s.timestamp }).meta({ id: 'Sent' });

/** The event each receiving device gets, carrying the envelope encrypted for it. */
export function messageEvents(
  ctx: Ctx,
  m: { id: string; group_id: string | null; sent_at: string; file_ids: string[] },
  list: Envelope[],
): PendingEvent[] {
  const { userId, username, deviceId, publicKey } = ctx.state.auth;
  const from = { user_id: userId, username, device_id: deviceId, public_key: publicKey };
  return list.map((e) => ({
    device_id: e.device_id,
    event: {
      type: 'message',
      message_id: m.id,
      group_id: m.group_id,
      sent_at: m.sent_at,
      from,
      nonce: e.nonce,
      ciphertext: e.ciphertext,
      file_ids: m.file_ids,
    },
  }));
}

async function replay(ctx: Ctx, clientMessageId: string): Promise<boolean> {
  const prior = await findByClientMessageId(ctx.deps.db, ctx.state.auth.deviceId, clientMessageId);
  if (!prior) return false;
  ctx.status = 200;
  ctx.body = { message_id: prior.id, sent_at: prior.sent_at.toISOString() };
  return true;
}

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
    },
    async handle(ctx, { body }) {
      const { auth } = ctx.state;
      const { db, config } = ctx.deps;
      if (body.client_message_id && (await replay(ctx, body.client_message_id))) return;
      const groupId = body.group_id ?? null;
      const fileIds = body.file_ids ?? [];
      let recipients: string[] = [];
      if (!groupId) {
        // The recipient and both users' device directories in one query.
        const found = await deviceKeysByUsername(db, body.to ?? '', auth.userId);
        if (!found) throw notFound('no such user');
        checkCoverageOf(found.byUser, auth, body.envelopes);
        recipients = [found.userId];
      }
      const id = randomUUID();
      const sentAt = new Date();
      // Message, recipients, inbox and outbox rows in one statement: a direct message without
      // files needs no explicit transaction (BEGIN/COMMIT would double its round trips).
      const store = (q: Q) =>
        appendEvents(
          q,
          messageEvents(
            ctx,
            { id, group_id: groupId, sent_at: sentAt.toISOString(), file_ids: fileIds },
            body.envelopes,
          ),
          config.INBOX_TTL_DAYS,
          ctx.state.requestId,
          messageInsert(
            {
              id,
              sender_user_id: auth.userId,
              sender_device_id: auth.deviceId,
              group_id: groupId,
              client_message_id: body.client_message_id ?? null,
              sent_at: sentAt,
            },
            recipients,
          ),
        );
      try {
        if (!groupId && !fileIds.length) await store(db);
        else {
          await db.transaction(async (trx) => {
            if (groupId) {
              // Locked until commit: a member removed concurrently either gets this message or cannot send.
              const group = await lockGroup(trx, groupId, 'share');
              if (!group?.members.includes(auth.userId)) throw notFound('no such group');
              await checkCoverage(trx, group.members, auth, body.envelopes);
              recipients = group.members.filter((u) => u !== auth.userId);
            }
            if (!(await lockOwnFiles(trx, auth.userId, fileIds))) throw notFound('no such file');
            await store(trx);
            await linkFiles(trx, id, fileIds);
          });
        }
      } catch (err) {
        // A concurrent retry with the same client_message_id won the race: answer as a replay.
        if (body.client_message_id && isUniqueViolation(err, 'messages_idempotency')) {
          if (await replay(ctx, body.client_message_id)) return;
        }
        throw err;
      }
      ctx.deps.outboxWritten();
      ctx.state.log.info({ msg_id: id, devices: body.envelopes.length }, 'message accepted');
      ctx.deps.metrics.messagesAccepted.inc({ kind: groupId ? 'group' : 'direct' });
      ctx.status = 201;
      ctx.body = { message_id: id, sent_at: sentAt.toISOString() };
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
      const after = query.after ?? 0;
      const page = await readInbox(ctx.deps.db, ctx.state.auth.deviceId, after, query.limit ?? 100);
      // Events are stored as their exact JSON; splice them instead of parsing and re-serialising.
      ctx.type = 'application/json';
      ctx.body = `{"events":[${page.bodies.join(',')}],"next_after":${page.lastSeq ?? after},"has_more":${page.hasMore}}`;
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
      await ackInbox(ctx.deps.db, ctx.state.auth.deviceId, body.up_to);
      ctx.status = 204;
    },
  }),
];
