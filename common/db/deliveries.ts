import { groupCommit } from '../group-commit.ts';
import { prepared, type Q } from './index.ts';

interface PushTarget {
  body: string;
  user_address: string | null;
}

type AttemptOutcome = 'delivered' | 'retry' | 'gone' | 'dead';

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

/** One delivery's key: which event of which device. */
interface DeliveryKey {
  device_id: string;
  seq: number;
  event_id: string;
}

/** findPushTarget for many deliveries in one round trip; results in the order of `keys`. */
async function findPushTargets(q: Q, keys: DeliveryKey[]): Promise<(PushTarget | undefined)[]> {
  const { rows } = await prepared<PushTarget & { i: string }>(
    q,
    `SELECT k.i, i.body, d.user_address
       FROM unnest(?::uuid[], ?::bigint[], ?::uuid[]) WITH ORDINALITY AS k(device_id, seq, event_id, i)
       JOIN inbox i ON i.device_id = k.device_id AND i.seq = k.seq AND i.event_id = k.event_id
       JOIN devices d ON d.id = i.device_id
      WHERE i.expires_at > now()`,
    [keys.map((k) => k.device_id), keys.map((k) => k.seq), keys.map((k) => k.event_id)],
  );
  const found: (PushTarget | undefined)[] = keys.map(() => undefined);
  for (const r of rows) found[Number(r.i) - 1] = { body: r.body, user_address: r.user_address };
  return found;
}

/**
 * Records the outcomes of many attempts in ONE statement (atomic, one round trip and one commit
 * for the whole batch): `delivered` removes the event from the inbox (not pulled, streamed or
 * pushed again), `gone` clears the address it was sent to unless the device has set another one
 * since. Every attempt but a successful first one is kept in `delivery_attempts`, in the order
 * given: the history of failures and retries stays queryable, while the common case (delivered at
 * once) writes one row less — at 1,000 msg/s that table would otherwise grow by ~600 M rows a week.
 */
async function recordOutcomes(q: Q, rows: (AttemptRow & { address: string })[]): Promise<void> {
  const col = <K extends keyof (AttemptRow & { address: string })>(k: K) => rows.map((r) => r[k]);
  await prepared(
    q,
    `WITH r AS (
       SELECT * FROM unnest(?::uuid[], ?::bigint[], ?::uuid[], ?::int[], ?::int[], ?::text[], ?::int[],
                            ?::text[], ?::int[], ?::text[], ?::text[])
              WITH ORDINALITY AS r(device_id, seq, event_id, attempt, status_code, error_class,
                                   duration_ms, outcome, retry_in_ms, request_id, address, i)),
     delivered AS (
       DELETE FROM inbox x USING r
        WHERE r.outcome = 'delivered' AND x.device_id = r.device_id AND x.seq = r.seq AND x.event_id = r.event_id),
     gone AS (
       UPDATE devices d SET user_address = NULL FROM r
        WHERE r.outcome = 'gone' AND d.id = r.device_id AND d.user_address = r.address)
     INSERT INTO delivery_attempts
       (device_id, seq, event_id, attempt, status_code, error_class, duration_ms, outcome, retry_in_ms, request_id)
     SELECT device_id, seq, event_id, attempt, status_code, error_class, duration_ms, outcome, retry_in_ms, request_id
       FROM r WHERE NOT (r.outcome = 'delivered' AND r.attempt = 1) ORDER BY i`,
    [
      col('device_id'),
      col('seq'),
      col('event_id'),
      col('attempt'),
      col('status_code'),
      col('error_class'),
      col('duration_ms'),
      col('outcome'),
      col('retry_in_ms'),
      col('request_id'),
      col('address'),
    ],
  );
}

/**
 * One call of `run` for the calls that group-commit together (see groupCommit; keys in call order,
 * one result per key). Pushes end one at a time at moderate load: flushing every turn would cost
 * one statement per push. A failure of a run fails every call in it.
 */
export function coalesce<K, V>(
  run: (keys: K[]) => Promise<V[]>,
  opts: { inFlight?: number; lingerMs?: number } = {},
): (key: K) => Promise<V> {
  return groupCommit<K, V>(async (batch) => {
    const values = await run(batch.map((w) => w.input));
    batch.forEach((w, n) => {
      w.resolve(values[n] as V);
    });
  }, opts);
}

/** The sender's reads and writes, each batched over the deliveries in flight at the same moment. */
export interface DeliveryStore {
  findPushTarget(key: DeliveryKey): Promise<PushTarget | undefined>;
  recordOutcome(row: AttemptRow & { address: string }): Promise<void>;
}

/** How long a recorded outcome waits for others to share its statement. */
const OUTCOME_LINGER_MS = 5;

export function deliveryStore(q: Q): DeliveryStore {
  return {
    findPushTarget: coalesce((keys: DeliveryKey[]) => findPushTargets(q, keys)),
    // The push is made by then: waiting a few ms costs no latency, only holds the prefetch
    // slots that long, and lets one statement record the outcomes of several pushes.
    recordOutcome: coalesce(
      async (rows: (AttemptRow & { address: string })[]) => {
        await recordOutcomes(q, rows);
        return rows.map(() => undefined);
      },
      { lingerMs: OUTCOME_LINGER_MS },
    ),
  };
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
