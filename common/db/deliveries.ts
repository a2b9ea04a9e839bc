import type { Q } from './index.ts';

export interface PushTarget {
  body: string;
  user_address: string | null;
}

/** The stored event and the device's current address; undefined once acked, delivered or expired. */
export async function findPushTarget(
  q: Q,
  deviceId: string,
  seq: number,
  eventId: string,
): Promise<PushTarget | undefined> {
  return q('inbox as i')
    .join('devices as d', 'd.id', 'i.device_id')
    .select('i.body', 'd.user_address')
    .where({ 'i.device_id': deviceId, 'i.seq': seq, 'i.event_id': eventId })
    .andWhere('i.expires_at', '>', q.fn.now())
    .first();
}

export type AttemptOutcome = 'delivered' | 'retry' | 'gone' | 'dead';

export interface AttemptRow {
  device_id: string;
  seq: number;
  event_id: string;
  attempt: number;
  status_code: number | null;
  error_class: string | null;
  duration_ms: number;
  outcome: AttemptOutcome;
  retry_in_ms: number | null;
  request_id: string | null;
}

export async function recordAttempt(q: Q, row: AttemptRow): Promise<void> {
  await q('delivery_attempts').insert(row);
}

/**
 * Records an attempt and its effect in ONE statement (atomic on its own, one round trip instead
 * of BEGIN/insert/delete/COMMIT): `delivered` removes the event from the inbox (not pulled,
 * streamed or pushed again), `gone` clears the address it was sent to unless the device has set
 * another one since.
 */
export async function recordOutcome(q: Q, row: AttemptRow, address: string): Promise<void> {
  await q.raw(
    `WITH delivered AS (
       DELETE FROM inbox WHERE ?::boolean AND device_id = ? AND seq = ? AND event_id = ?),
     gone AS (
       UPDATE devices SET user_address = NULL WHERE ?::boolean AND id = ? AND user_address = ?)
     INSERT INTO delivery_attempts
       (device_id, seq, event_id, attempt, status_code, error_class, duration_ms, outcome, retry_in_ms, request_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      row.outcome === 'delivered',
      row.device_id,
      row.seq,
      row.event_id,
      row.outcome === 'gone',
      row.device_id,
      address,
      row.device_id,
      row.seq,
      row.event_id,
      row.attempt,
      row.status_code,
      row.error_class,
      row.duration_ms,
      row.outcome,
      row.retry_in_ms,
      row.request_id,
    ],
  );
}

/** A 2xx removes the event from the inbox: it is not pulled, streamed or pushed again. */
export async function removeDelivered(q: Q, deviceId: string, seq: number, eventId: string): Promise<void> {
  await q('inbox').where({ device_id: deviceId, seq, event_id: eventId }).delete();
}

/** A 410 clears the address it was sent to — unless the device has set another one since. */
export async function clearGoneAddress(q: Q, deviceId: string, address: string): Promise<boolean> {
  return (
    (await q('devices').where({ id: deviceId, user_address: address }).update({ user_address: null })) > 0
  );
}

/** Attempts of one device (or one event), newest last; what an operator asks first. */
export async function listAttempts(
  q: Q,
  where: { device_id: string } | { event_id: string },
  limit = 100,
): Promise<(AttemptRow & { at: Date })[]> {
  const rows: (AttemptRow & { at: Date; seq: string })[] = await q('delivery_attempts')
    .where(where)
    .orderBy('id', 'desc')
    .limit(limit);
  return rows.reverse().map((r) => ({ ...r, seq: Number(r.seq) }));
}

export async function pruneDeliveryAttempts(q: Q, retentionDays: number): Promise<number> {
  return q('delivery_attempts')
    .where('at', '<', q.raw('now() - make_interval(secs => ?)', [retentionDays * 86_400]))
    .delete();
}
