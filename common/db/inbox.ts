import { randomUUID } from 'node:crypto';
import type { PendingEvent } from '../events.ts';
import { prepared, type Q } from './index.ts';

/** A piece of SQL with its `?` bindings, folded into another statement. */
export interface SqlPart {
  sql: string;
  bindings: unknown[];
}

/**
 * Appends events to device inboxes and queues one outbox row per event, in one statement (atomic
 * on its own; inside the caller's transaction when given one). Each device's `last_seq` is bumped under its row lock, taken in id order so
 * concurrent senders never deadlock, and held until commit, so a device's seqs become visible
 * in order (a reader that acked up to N can never later see a committed seq below N).
 * Devices deleted meanwhile are skipped. Returns the number of events stored.
 */
export async function appendEvents(
  trx: Q,
  pending: PendingEvent[],
  ttlDays: number,
  /** The listener request's id, carried to the sender's logs. */
  requestId: string | null = null,
  /** Writes of the caller's that go into the same statement (CTEs named other than c/bumped/ins). */
  also?: SqlPart,
): Promise<number> {
  if (!pending.length && !also) return 0;
  const { sql, bindings } = appendEventsStatement(pending, ttlDays, requestId, also);
  return (await prepared(trx, sql, bindings)).rowCount;
}

/** The statement of appendEvents (also run directly by the bench's PostgreSQL ceiling). */
export function appendEventsStatement(
  pending: PendingEvent[],
  ttlDays: number,
  requestId: string | null,
  also?: SqlPart,
): SqlPart {
  const counts = new Map<string, number>();
  const cols = {
    device: [] as string[],
    k: [] as number[],
    id: [] as string[],
    type: [] as string[],
    messageId: [] as (string | null)[],
    rest: [] as string[],
  };
  for (const p of pending) {
    const k = (counts.get(p.device_id) ?? 0) + 1;
    counts.set(p.device_id, k);
    cols.device.push(p.device_id);
    cols.k.push(k);
    cols.id.push(randomUUID());
    cols.type.push(p.event.type);
    cols.messageId.push(p.event.message_id);
    // The stored body is `{"id":…,"seq":…,` + the rest of the event (key order of `Event`); the
    // seq only exists once the device row is locked, so the statement splices it in.
    cols.rest.push(JSON.stringify(p.event).slice(1));
  }
  const ids = [...counts.keys()];
  // One statement (one round trip): bump each device's last_seq under its row lock, then insert
  // the inbox rows with their seqs and one outbox row per event.
  return {
    sql: `WITH ${also ? `${also.sql},` : ''}
     c AS (
       SELECT id, n FROM unnest(?::uuid[], ?::int[]) AS c(id, n)),
     bumped AS (
       UPDATE devices d SET last_seq = d.last_seq + c.n
         FROM c
        WHERE d.id = c.id
          AND d.id IN (SELECT id FROM devices WHERE id = ANY(?::uuid[]) ORDER BY id FOR UPDATE)
        RETURNING d.id, d.last_seq - c.n AS base),
     ins AS (
       INSERT INTO inbox (device_id, seq, event_id, type, message_id, body, expires_at)
       SELECT e.device_id, b.base + e.k, e.event_id, e.type, e.message_id,
              '{"id":"' || e.event_id || '","seq":' || (b.base + e.k) || ',' || e.rest,
              now() + make_interval(days => ?)
         FROM unnest(?::uuid[], ?::int[], ?::uuid[], ?::text[], ?::uuid[], ?::text[])
              AS e(device_id, k, event_id, type, message_id, rest)
         JOIN bumped b ON b.id = e.device_id
       RETURNING device_id, seq, event_id)
     INSERT INTO outbox (device_id, seq, event_id, request_id)
     SELECT device_id, seq, event_id, ? FROM ins ORDER BY device_id, seq`,
    bindings: [
      ...(also?.bindings ?? []),
      ids,
      ids.map((id) => counts.get(id) ?? 1),
      ids,
      ttlDays,
      cols.device,
      cols.k,
      cols.id,
      cols.type,
      cols.messageId,
      cols.rest,
      requestId,
    ],
  };
}

export interface InboxPage {
  bodies: string[];
  lastSeq: number | null;
  hasMore: boolean;
}

/** Undelivered, unexpired events of a device after `after`, ascending, as stored JSON. */
export async function readInbox(q: Q, deviceId: string, after: number, limit: number): Promise<InboxPage> {
  const rows: { seq: string; body: string }[] = await q('inbox')
    .select('seq', 'body')
    .where({ device_id: deviceId })
    .andWhere('seq', '>', after)
    .andWhere('expires_at', '>', q.fn.now())
    .orderBy('seq')
    .limit(limit + 1);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    bodies: page.map((r) => r.body),
    lastSeq: last ? Number(last.seq) : null,
    hasMore: rows.length > limit,
  };
}

export async function ackInbox(q: Q, deviceId: string, upTo: number): Promise<number> {
  return q('inbox').where({ device_id: deviceId }).andWhere('seq', '<=', upTo).delete();
}

/** Re-queues every pending event of a device for push, in seq order (resume, new address). */
export async function requeueInbox(q: Q, deviceId: string, requestId: string | null = null): Promise<number> {
  const { rowCount } = await q.raw<{ rowCount: number }>(
    `INSERT INTO outbox (device_id, seq, event_id, request_id)
     SELECT device_id, seq, event_id, ? FROM inbox
      WHERE device_id = ? AND expires_at > now() ORDER BY seq`,
    [requestId, deviceId],
  );
  return rowCount;
}

export async function deleteExpiredInbox(q: Q): Promise<number> {
  return q('inbox').where('expires_at', '<=', q.fn.now()).delete();
}
