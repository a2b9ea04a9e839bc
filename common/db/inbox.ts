import { randomUUID } from 'node:crypto';
import type { Event, PendingEvent } from '../events.ts';
import type { Q, Tx } from './index.ts';

/**
 * Appends events to device inboxes and queues one outbox row per event, inside the caller's
 * transaction. Each device's `last_seq` is bumped under its row lock, taken in id order so
 * concurrent senders never deadlock, and held until commit, so a device's seqs become visible
 * in order (a reader that acked up to N can never later see a committed seq below N).
 * Devices deleted meanwhile are skipped. Returns the number of events stored.
 */
export async function appendEvents(
  trx: Tx,
  pending: PendingEvent[],
  ttlDays: number,
  /** The listener request's id, carried to the sender's logs. */
  requestId: string | null = null,
): Promise<number> {
  if (!pending.length) return 0;
  const counts = new Map<string, number>();
  for (const p of pending) counts.set(p.device_id, (counts.get(p.device_id) ?? 0) + 1);
  const ids = [...counts.keys()];
  const { rows } = await trx.raw<{ rows: { id: string; last_seq: string }[] }>(
    `UPDATE devices d SET last_seq = d.last_seq + c.n
       FROM unnest(?::uuid[], ?::int[]) AS c(id, n)
      WHERE d.id = c.id
        AND d.id IN (SELECT id FROM devices WHERE id = ANY(?::uuid[]) ORDER BY id FOR UPDATE)
      RETURNING d.id, d.last_seq`,
    [ids, ids.map((id) => counts.get(id) ?? 1), ids],
  );
  // next seq to hand out per device
  const next = new Map(rows.map((r) => [r.id, Number(r.last_seq) - (counts.get(r.id) ?? 0) + 1]));
  const cols = { device: [] as string[], seq: [] as number[], id: [] as string[], type: [] as string[] };
  const messageIds: (string | null)[] = [];
  const bodies: string[] = [];
  for (const p of pending) {
    const seq = next.get(p.device_id);
    if (seq === undefined) continue;
    next.set(p.device_id, seq + 1);
    const event: Event = { id: randomUUID(), seq, ...p.event };
    cols.device.push(p.device_id);
    cols.seq.push(seq);
    cols.id.push(event.id);
    cols.type.push(event.type);
    messageIds.push(event.message_id);
    bodies.push(JSON.stringify(event));
  }
  if (!bodies.length) return 0;
  await trx.raw(
    `WITH ins AS (
       INSERT INTO inbox (device_id, seq, event_id, type, message_id, body, expires_at)
       SELECT e.device_id, e.seq, e.event_id, e.type, e.message_id, e.body, now() + make_interval(days => ?)
         FROM unnest(?::uuid[], ?::bigint[], ?::uuid[], ?::text[], ?::uuid[], ?::text[])
              AS e(device_id, seq, event_id, type, message_id, body)
       RETURNING device_id, seq, event_id)
     INSERT INTO outbox (device_id, seq, event_id, request_id)
     SELECT device_id, seq, event_id, ? FROM ins ORDER BY device_id, seq`,
    // knex's binding types reject null array elements, which pg encodes fine.
    [ttlDays, cols.device, cols.seq, cols.id, cols.type, messageIds as string[], bodies, requestId],
  );
  return bodies.length;
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
