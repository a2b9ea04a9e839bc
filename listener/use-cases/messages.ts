import { isForeignKeyViolation } from '../../common/db/index.ts';
import { newId } from '../../common/ids.ts';
import { linkFiles, lockOwnFiles } from '../db/files.ts';
import { lockGroup } from '../db/groups.ts';
import { type AppendEvent, ackInbox, appendEvents, type NewMessage, readInbox } from '../db/inbox.ts';
import { findByClientMessageId, releaseClientMessageId } from '../db/messages.ts';
import { findUserById } from '../db/users.ts';
import type { Deps } from '../deps.ts';
import { AppError, notFound, unauthorized, unavailable } from '../errors.ts';
import { withEvents } from '../messaging/append.ts';
import { checkCoverage, checkCoverageOf, type Envelope } from '../messaging/coverage.ts';
import { directDirectory } from '../messaging/directory.ts';
import { messageSent } from '../messaging/events.ts';
import type { SendResult } from '../messaging/send-batcher.ts';
import type { Actor } from './caller.ts';

export interface SendInput {
  /** Exactly one of `to` (a username) and `groupId`. */
  to?: string | undefined;
  groupId?: string | undefined;
  clientMessageId?: string | undefined;
  envelopes: Envelope[];
  fileIds?: string[] | undefined;
}

interface Sent {
  message_id: string;
  sent_at: string;
}

/** The sent message; `replay` when it is an earlier send with the same client_message_id. */
export interface SendOutcome {
  replay: boolean;
  sent: Sent;
}

/** The earlier send of this device with this client_message_id, if any. */
async function prior(deps: Deps, actor: Actor, clientMessageId: string): Promise<Sent | null> {
  const m = await findByClientMessageId(deps.db, actor.auth.deviceId, clientMessageId);
  return m ? { message_id: m.id, sent_at: m.sent_at.toISOString() } : null;
}

/**
 * Stores a send. A direct one checks its envelopes against the device directory from the cache,
 * then goes through the listener's group commit unless it has files; a group send or one with
 * files runs in its own transaction, which locks the group (a member removed concurrently either
 * gets this message or cannot send) and the files. Says whether the message was stored, or why
 * not (see SendResult).
 */
async function store(
  deps: Deps,
  actor: Actor,
  input: SendInput,
  id: string,
  sentAt: Date,
): Promise<SendResult> {
  const { auth } = actor;
  const { db, config } = deps;
  const groupId = input.groupId ?? null;
  const fileIds = input.fileIds ?? [];
  const message = (recipients: string[]): NewMessage => ({
    id,
    sender_user_id: auth.userId,
    sender_device_id: auth.deviceId,
    group_id: groupId,
    client_message_id: input.clientMessageId ?? null,
    sent_at: sentAt,
    recipients,
  });
  const about = { id, group_id: groupId, sent_at: sentAt.toISOString(), file_ids: fileIds };
  // Each receiving device gets the envelope encrypted for it, stored only if the message is.
  const events: AppendEvent[] = input.envelopes.map((e) => ({
    device_id: e.device_id,
    request_id: actor.requestId,
    gate: id,
    event: messageSent(auth, about, e),
  }));
  let recipients: string[] = [];
  if (!groupId) {
    const found = await directDirectory(db, deps.cache, input.to ?? '', auth.userId);
    if (!found) throw notFound('no such user');
    checkCoverageOf(found.byUser, auth, input.envelopes);
    recipients = [found.userId];
    if (!fileIds.length) return deps.sends({ message: message(recipients), events });
  }
  const done = await withEvents(deps, actor.requestId, async (trx, _append, wrote) => {
    if (groupId) {
      const group = await lockGroup(trx, groupId, 'share');
      if (!group?.members.includes(auth.userId)) throw notFound('no such group');
      await checkCoverage(trx, group.members, auth, input.envelopes);
      recipients = group.members.filter((u) => u !== auth.userId);
    }
    if (!(await lockOwnFiles(trx, auth.userId, fileIds))) throw notFound('no such file');
    const appended = await appendEvents(trx, events, config.INBOX_TTL_DAYS, {
      messages: [message(recipients)],
      inboxMax: config.INBOX_MAX_EVENTS,
    });
    if (appended.inserted.has(id)) await linkFiles(trx, id, fileIds);
    wrote(appended.outbox);
    return appended;
  });
  return done.inserted.has(id) ? 'stored' : done.full.has(id) ? 'full' : 'taken';
}

/**
 * Sends an end-to-end encrypted message, one envelope per receiving device. A reused
 * client_message_id is a replay of the earlier send, or (past its 24 h window, before the cleanup
 * job freed it) free to use again.
 */
export async function sendMessage(deps: Deps, actor: Actor, input: SendInput): Promise<SendOutcome> {
  const cmid = input.clientMessageId;
  for (let attempt = 1; ; attempt++) {
    const id = newId();
    const sentAt = new Date();
    let stored: SendResult;
    try {
      stored = await store(deps, actor, input, id, sentAt);
    } catch (err) {
      // An account was deleted between the checks and the statement (its direct-contacts row
      // fails the foreign key): nothing was stored. The sender's own → its session is over.
      if (isForeignKeyViolation(err)) {
        if (await findUserById(deps.db, actor.auth.userId)) throw notFound('no such user');
        throw unauthorized();
      }
      // A retry after the recipients' devices changed still answers with the original.
      const earlier =
        cmid && err instanceof AppError && err.status < 500 ? await prior(deps, actor, cmid) : null;
      if (earlier) return { replay: true, sent: earlier };
      throw err;
    }
    if (stored === 'full') {
      // Not a replay: a send with this client_message_id was never stored.
      throw new AppError(
        429,
        'recipient_inbox_full',
        `a receiving device holds ${deps.config.INBOX_MAX_EVENTS} undelivered events; nothing was stored`,
        { headers: { 'Retry-After': '60' } },
      );
    }
    if (stored === 'stored') {
      actor.log.debug({ msg_id: id, devices: input.envelopes.length }, 'message accepted');
      deps.metrics.messagesAccepted.inc({ kind: input.groupId ? 'group' : 'direct' });
      return { replay: false, sent: { message_id: id, sent_at: sentAt.toISOString() } };
    }
    if (!cmid) throw new Error('a send without client_message_id was not stored');
    const earlier = await prior(deps, actor, cmid);
    if (earlier) return { replay: true, sent: earlier };
    const freed = await releaseClientMessageId(deps.db, actor.auth.deviceId, cmid);
    // Freed by the cleanup job meanwhile, or by us: store again. A race that keeps losing is
    // "nothing was done, retry" (its retry answers with whichever send won).
    if (!freed && attempt >= 3) throw unavailable('client_message_id is in use by a concurrent send; retry');
  }
}

/** A page of this device's undelivered events after `after`: their stored JSON, ascending by seq. */
export async function pullEvents(
  deps: Deps,
  actor: Actor,
  input: { after: number; limit: number },
): Promise<{ bodies: string[]; nextAfter: number; hasMore: boolean }> {
  const page = await readInbox(deps.db, actor.auth.deviceId, input.after, input.limit);
  return { bodies: page.bodies, nextAfter: page.lastSeq ?? input.after, hasMore: page.hasMore };
}

/** Removes this device's events up to `upTo`. */
export async function ackEvents(deps: Deps, actor: Actor, upTo: number): Promise<void> {
  await ackInbox(deps.db, actor.auth.deviceId, upTo);
}
