import { prepared, type Q } from '../../common/db/index.ts';
import type { PendingEvent } from '../../common/events.ts';
import { newId } from '../../common/ids.ts';
import type { MessageRow } from './messages.ts';

/** A new message row, stored by `appendEvents` in the same statement as its events. */
export interface NewMessage
  extends Pick<
    MessageRow,
    'id' | 'sender_user_id' | 'sender_device_id' | 'group_id' | 'client_message_id' | 'sent_at'
  > {
  /** Who it was addressed to (message_recipients): the 1:1 recipient or the group's other members. */
  recipients: string[];
}

/** An event to append, with the request that caused it (carried to the sender's logs). */
export interface AppendEvent extends PendingEvent {
  request_id: string | null;
  /**
   * The new message this event belongs to: the event is stored only if that message was (a
   * message whose `client_message_id` was already used stores nothing and is reported back).
   */
  gate?: string;
}

/**
 * An event just appended, with its outbox row (one per statement, shared by its events) and what
 * its first push needs: the stored body and the address as of commit.
 */
export interface OutboxEntry {
  /** The outbox row that lists this event. */
  id: string;
  device_id: string;
  seq: number;
  event_id: string;
  request_id: string | null;
  created_at: Date;
  body?: string;
  address?: string | null;
}

export interface Appended {
  /** The events stored, each with the statement's outbox row, for the post-commit publish. */
  outbox: OutboxEntry[];
  /** Ids of the messages inserted. A message in neither set had its client_message_id taken. */
  inserted: Set<string>;
  /** Messages refused, with nothing stored: a receiving device holds `inboxMax` undelivered events. */
  full: Set<string>;
}

/** What appendEvents stores besides the events. */
export interface AppendOptions {
  messages?: NewMessage[];
  /** Outbox rows already published and confirmed, deleted by the same statement. */
  published?: string[];
  /**
   * A new message is refused (nothing stored) when one of its receiving devices holds this many
   * undelivered events. Counted only when the device's oldest pending seq is that far behind its
   * last one (one index probe), and then at most this many entries: an inbox that keeps up costs
   * next to nothing, however many events went through it. Other events are not limited.
   */
  inboxMax?: number;
}

/**
 * Appends events to device inboxes with one outbox row listing them all and, in the same statement, inserts
 * the messages they carry with their recipients and, for direct messages, the sender and the
 * recipient as each other's direct contacts (listener/presence/contacts.ts): one execution
 * (atomic on its own, or inside the caller's transaction) for a whole batch of sends. Per-execution overhead dominates PostgreSQL's
 * cost here (one message: ~1,700 row pairs/s; 32 devices per execution: ~13,000), so group commit
 * means fewer executions, not only fewer commits.
 *
 * Each device's `last_seq` is bumped under its row lock, taken in id order so concurrent batches
 * never deadlock, and held until commit, so a device's seqs become visible in order (a reader that
 * acked up to N can never later see a committed seq below N); events keep their order in
 * `events` within a device. Devices deleted meanwhile are skipped. A message whose
 * (sender device, client_message_id) exists already is skipped with its events (ON CONFLICT DO
 * NOTHING), so one batch-mate's retry never fails the others.
 */
export async function appendEvents(
  q: Q,
  events: AppendEvent[],
  ttlDays: number,
  opts: AppendOptions = {},
): Promise<Appended> {
  if (!events.length && !opts.messages?.length) return { outbox: [], inserted: new Set(), full: new Set() };
  const { sql, bindings, rest } = appendStatement(events, ttlDays, opts);
  const { rows } = await prepared<{
    id: string | null;
    device_id: string | null;
    seq: string | null;
    event_id: string | null;
    request_id: string | null;
    created_at: Date | null;
    address: string | null;
    message_id: string | null;
    refused: boolean | null;
  }>(q, sql, bindings);
  const inserted = new Set<string>();
  const full = new Set<string>();
  const outbox: OutboxEntry[] = [];
  for (const r of rows) {
    if (r.message_id) (r.refused ? full : inserted).add(r.message_id);
    else if (r.id && r.device_id && r.seq && r.event_id && r.created_at) {
      outbox.push({
        id: r.id,
        device_id: r.device_id,
        seq: Number(r.seq),
        event_id: r.event_id,
        request_id: r.request_id,
        created_at: r.created_at,
        // The same text the statement stored (see `rest` below).
        body: `{"id":"${r.event_id}","seq":${r.seq},${rest.get(r.event_id)}`,
        address: r.address,
      });
    }
  }
  return { outbox, inserted, full };
}

/** The statement of appendEvents (also run directly by the bench's PostgreSQL ceiling). */
export function appendStatement(
  events: AppendEvent[],
  ttlDays: number,
  { messages = [], published = [], inboxMax = 0 }: AppendOptions = {},
): { sql: string; bindings: unknown[]; rest: Map<string, string> } {
  const e = {
    device: [] as string[],
    id: [] as string[],
    type: [] as string[],
    messageId: [] as (string | null)[],
    rest: [] as string[],
    requestId: [] as (string | null)[],
    gate: [] as (string | null)[],
  };
  const rest = new Map<string, string>();
  for (const p of events) {
    // Time-ordered ids keep the inserts into their indexes local.
    const id = newId();
    // The stored body is `{"id":…,"seq":…,` + the rest of the event (key order of `Event`); the
    // seq only exists once the device row is locked, so the statement splices it in.
    const tail = JSON.stringify(p.event).slice(1);
    rest.set(id, tail);
    e.device.push(p.device_id);
    e.id.push(id);
    e.type.push(p.event.type);
    e.messageId.push(p.event.message_id);
    e.rest.push(tail);
    e.requestId.push(p.request_id);
    e.gate.push(p.gate ?? null);
  }
  const recipients = messages.flatMap((m) => [...new Set(m.recipients)].map((u) => [m.id, u] as const));
  return {
    sql: `WITH
     published AS (
       DELETE FROM outbox WHERE id = ANY(?::bigint[])),
     ev AS (
       SELECT * FROM unnest(?::uuid[], ?::uuid[], ?::text[], ?::uuid[], ?::text[], ?::text[], ?::uuid[])
              WITH ORDINALITY AS e(device_id, event_id, type, message_id, rest, request_id, gate, i)),
     crowded AS (
       SELECT DISTINCT ev.gate AS id FROM ev JOIN devices d ON d.id = ev.device_id
        WHERE ev.gate IS NOT NULL AND ?::int > 0
          AND CASE WHEN (SELECT min(x.seq) FROM inbox x WHERE x.device_id = ev.device_id) <= d.last_seq - ?::int + 1
                   THEN (SELECT count(*) FROM (SELECT 1 FROM inbox x WHERE x.device_id = ev.device_id LIMIT ?) n) >= ?
                   ELSE false END),
     msg AS (
       INSERT INTO messages (id, sender_user_id, sender_device_id, group_id, client_message_id, sent_at)
       SELECT * FROM unnest(?::uuid[], ?::uuid[], ?::uuid[], ?::uuid[], ?::text[], ?::timestamptz[])
              AS m(id, sender_user_id, sender_device_id, group_id, client_message_id, sent_at)
        WHERE m.id NOT IN (SELECT id FROM crowded)
       ON CONFLICT (sender_device_id, client_message_id) WHERE client_message_id IS NOT NULL DO NOTHING
       RETURNING id, sender_user_id, group_id),
     rcpt AS (
       SELECT x.m, x.u, msg.sender_user_id AS s, msg.group_id AS g
         FROM unnest(?::uuid[], ?::uuid[]) AS x(m, u) JOIN msg ON msg.id = x.m),
     rcp AS (
       INSERT INTO message_recipients (message_id, user_id) SELECT m, u FROM rcpt),
     pairs AS (
       INSERT INTO direct_contacts (user_id, contact_id)
       SELECT DISTINCT p.a, p.b FROM rcpt CROSS JOIN LATERAL (VALUES (s, u), (u, s)) AS p(a, b)
        WHERE g IS NULL AND u <> s ORDER BY 1, 2 -- in key order: concurrent batches never deadlock
       ON CONFLICT DO NOTHING),
     e AS (
       SELECT ev.*, row_number() OVER (PARTITION BY ev.device_id ORDER BY ev.i) AS k
         FROM ev WHERE ev.gate IS NULL OR ev.gate IN (SELECT id FROM msg)),
     c AS (
       SELECT device_id AS id, count(*) AS n FROM e GROUP BY device_id),
     bumped AS (
       UPDATE devices d SET last_seq = d.last_seq + c.n
         FROM c
        WHERE d.id = c.id
          AND d.id IN (SELECT id FROM devices WHERE id IN (SELECT id FROM c) ORDER BY id FOR UPDATE)
        RETURNING d.id, d.last_seq - c.n AS base, d.user_address),
     ins AS (
       INSERT INTO inbox (device_id, seq, event_id, type, message_id, body, expires_at)
       SELECT e.device_id, b.base + e.k, e.event_id, e.type, e.message_id,
              '{"id":"' || e.event_id || '","seq":' || (b.base + e.k) || ',' || e.rest,
              now() + make_interval(days => ?)
         FROM e JOIN bumped b ON b.id = e.device_id
       RETURNING device_id, seq, event_id),
     appended AS (
       SELECT ins.device_id, ins.seq, ins.event_id, e.request_id
         FROM ins JOIN e ON e.event_id = ins.event_id),
     out AS (
       INSERT INTO outbox (device_ids, seqs, event_ids, request_ids)
       SELECT array_agg(device_id ORDER BY device_id, seq), array_agg(seq ORDER BY device_id, seq),
              array_agg(event_id ORDER BY device_id, seq), array_agg(request_id ORDER BY device_id, seq)
         FROM appended HAVING count(*) > 0
       RETURNING id, created_at)
     SELECT o.id, a.device_id, a.seq, a.event_id, a.request_id, o.created_at, b.user_address AS address,
            NULL::uuid AS message_id, NULL::boolean AS refused
       FROM appended a JOIN bumped b ON b.id = a.device_id CROSS JOIN out o
     UNION ALL
     SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, id, false FROM msg
     UNION ALL
     SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, id, true FROM crowded`,
    bindings: [
      published,
      e.device,
      e.id,
      e.type,
      e.messageId,
      e.rest,
      e.requestId,
      e.gate,
      inboxMax,
      inboxMax,
      inboxMax,
      inboxMax,
      messages.map((m) => m.id),
      messages.map((m) => m.sender_user_id),
      messages.map((m) => m.sender_device_id),
      messages.map((m) => m.group_id),
      messages.map((m) => m.client_message_id),
      messages.map((m) => m.sent_at),
      recipients.map((r) => r[0]),
      recipients.map((r) => r[1]),
      ttlDays,
    ],
    rest,
  };
}

/** The same request id on every event (one request's writes). */
export function fromRequest(events: PendingEvent[], requestId: string | null): AppendEvent[] {
  return events.map((p) => ({ ...p, request_id: requestId }));
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

/**
 * Re-queues the oldest `max` pending events of a device for push, in seq order (resume, new
 * address); the rest wait for pull, so one request never fans out more than `max` pushes. The
 * rows come back for the post-commit publish; the sender reads each body and the address at push time.
 */
export async function requeueInbox(
  q: Q,
  deviceId: string,
  max: number,
  requestId: string | null = null,
): Promise<OutboxEntry[]> {
  const { rows } = await q.raw<{
    rows: { id: string; device_id: string; seq: string; event_id: string; created_at: Date }[];
  }>(
    `WITH pending AS (
       SELECT device_id, seq, event_id FROM inbox
        WHERE device_id = ? AND expires_at > now() ORDER BY seq LIMIT ?),
     out AS (
       INSERT INTO outbox (device_ids, seqs, event_ids, request_ids)
       SELECT array_agg(device_id ORDER BY seq), array_agg(seq ORDER BY seq), array_agg(event_id ORDER BY seq),
              array_agg(?::text ORDER BY seq)
         FROM pending HAVING count(*) > 0
       RETURNING id, created_at)
     SELECT o.id, p.device_id, p.seq, p.event_id, o.created_at FROM pending p CROSS JOIN out o ORDER BY p.seq`,
    [deviceId, max, requestId],
  );
  return rows.map((r) => ({ ...r, seq: Number(r.seq), request_id: requestId }));
}

export async function deleteExpiredInbox(q: Q): Promise<number> {
  return q('inbox').where('expires_at', '<=', q.fn.now()).delete();
}
