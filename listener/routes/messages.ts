import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { linkFiles, lockOwnFiles } from '../db/files.ts';
import { lockGroup } from '../db/groups.ts';
import { type AppendEvent, ackInbox, appendEvents, type NewMessage, readInbox } from '../db/inbox.ts';
import { findByClientMessageId, releaseClientMessageId } from '../db/messages.ts';
import { AppError, notFound, unavailable } from '../errors.ts';
import { eventPage } from '../http/event-schemas.ts';
import { type Ctx, route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import { checkCoverage, checkCoverageOf, type Envelope } from '../messaging/coverage.ts';
import { directDirectory } from '../messaging/directory.ts';
import { sender } from '../messaging/events.ts';
import type { SendResult } from '../messaging/send-batcher.ts';

export const MAX_ENVELOPES = 1000;
export const MAX_CIPHERTEXT_BYTES = 64 * 1024;

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

type SendBody = z.output<typeof sendBody>;

const sent = z.object({ message_id: s.id, sent_at: s.timestamp }).meta({ id: 'Sent' });

/** The event each receiving device gets, carrying the envelope encrypted for it. */
export function messageEvents(
  ctx: Ctx,
  m: { id: string; group_id: string | null; sent_at: string; file_ids: string[] },
  list: Envelope[],
): AppendEvent[] {
  const from = sender(ctx.state.auth);
  return list.map((e) => ({
    device_id: e.device_id,
    request_id: ctx.state.requestId,
    gate: m.id,
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

/**
 * Stores a send. A direct one checks its envelopes against the device directory from the cache,
 * then goes through the listener's group commit unless it has files; a group send or one with
 * files runs in its own transaction, which locks the group (a member removed concurrently either
 * gets this message or cannot send) and the files. Says whether the message was stored, or why
 * not (see SendResult).
 */
async function store(ctx: Ctx, body: SendBody, id: string, sentAt: Date): Promise<SendResult> {
  const { auth } = ctx.state;
  const { db, config } = ctx.deps;
  const groupId = body.group_id ?? null;
  const fileIds = body.file_ids ?? [];
  const message = (recipients: string[]): NewMessage => ({
    id,
    sender_user_id: auth.userId,
    sender_device_id: auth.deviceId,
    group_id: groupId,
    client_message_id: body.client_message_id ?? null,
    sent_at: sentAt,
    recipients,
  });
  const events = messageEvents(
    ctx,
    { id, group_id: groupId, sent_at: sentAt.toISOString(), file_ids: fileIds },
    body.envelopes,
  );
  let recipients: string[] = [];
  if (!groupId) {
    const found = await directDirectory(db, ctx.deps.cache, body.to ?? '', auth.userId);
    if (!found) throw notFound('no such user');
    checkCoverageOf(found.byUser, auth, body.envelopes);
    recipients = [found.userId];
    if (!fileIds.length) return ctx.deps.sends({ message: message(recipients), events });
  }
  const done = await db.transaction(async (trx) => {
    if (groupId) {
      const group = await lockGroup(trx, groupId, 'share');
      if (!group?.members.includes(auth.userId)) throw notFound('no such group');
      await checkCoverage(trx, group.members, auth, body.envelopes);
      recipients = group.members.filter((u) => u !== auth.userId);
    }
    if (!(await lockOwnFiles(trx, auth.userId, fileIds))) throw notFound('no such file');
    const appended = await appendEvents(trx, events, config.INBOX_TTL_DAYS, {
      messages: [message(recipients)],
      inboxMax: config.INBOX_MAX_EVENTS,
    });
    if (appended.inserted.has(id)) await linkFiles(trx, id, fileIds);
    return appended;
  });
  ctx.deps.outboxWritten(done.outbox);
  return done.inserted.has(id) ? 'stored' : done.full.has(id) ? 'full' : 'taken';
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
      429: {
        description:
          '`recipient_inbox_full`: a receiving device holds INBOX_MAX_EVENTS undelivered events; nothing is stored',
        errors: ['recipient_inbox_full', 'rate_limited'],
      },
    },
    async handle(ctx, { body }) {
      const cmid = body.client_message_id;
      // A reused client_message_id is a replay, or (past its 24 h window, before the cleanup job
      // freed it) free to use again.
      for (let attempt = 1; ; attempt++) {
        const id = uuidv7();
        const sentAt = new Date();
        let stored: SendResult;
        try {
          stored = await store(ctx, body, id, sentAt);
        } catch (err) {
          // A retry after the recipients' devices changed still answers with the original.
          if (cmid && err instanceof AppError && err.status < 500 && (await replay(ctx, cmid))) return;
          throw err;
        }
        if (stored === 'full') {
          // Not a replay: a send with this client_message_id was never stored.
          throw new AppError(
            429,
            'recipient_inbox_full',
            `a receiving device holds ${ctx.deps.config.INBOX_MAX_EVENTS} undelivered events; nothing was stored`,
            { headers: { 'Retry-After': '60' } },
          );
        }
        if (stored === 'stored') {
          ctx.state.log.debug({ msg_id: id, devices: body.envelopes.length }, 'message accepted');
          ctx.deps.metrics.messagesAccepted.inc({ kind: body.group_id ? 'group' : 'direct' });
          ctx.status = 201;
          ctx.body = { message_id: id, sent_at: sentAt.toISOString() };
          return;
        }
        if (!cmid) throw new Error('a send without client_message_id was not stored');
        if (await replay(ctx, cmid)) return;
        const freed = await releaseClientMessageId(ctx.deps.db, ctx.state.auth.deviceId, cmid);
        // Freed by the cleanup job meanwhile, or by us: store again. A race that keeps losing is
        // "nothing was done, retry" (its retry answers with whichever send won).
        if (!freed && attempt >= 3)
          throw unavailable('client_message_id is in use by a concurrent send; retry');
      }
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
