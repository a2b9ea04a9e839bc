import type { Call } from '../helpers/http.ts';
import type { Device } from '../helpers/people.ts';
import type { Sink } from '../helpers/sink.ts';
import type { SendRecord } from './driver.ts';
import type { Boxes } from './world.ts';

interface PushedEvent {
  id: string;
  message_id: string;
  nonce: string;
  ciphertext: string;
  from: { public_key: string };
}

/** What one device holds of one event: how often it was pushed, whether it is still in the inbox. */
export interface Copy {
  eventId: string;
  cmid: string | null;
  messageId: string;
  pushes: number;
  pulled: boolean;
}

/** device id → event id → copy. */
export type Received = Map<string, Map<string, Copy>>;

function upsert<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    map.set(key, v);
  }
  return v;
}

function note(received: Received, boxes: Boxes, device: Device, e: PushedEvent, via: 'push' | 'pull'): void {
  const byEvent = upsert(received, device.deviceId, () => new Map<string, Copy>());
  const copy = upsert(byEvent, e.id, () => {
    const text = boxes.open(device, e);
    const cmid = text ? ((JSON.parse(text) as { cmid?: string }).cmid ?? null) : null;
    return { eventId: e.id, cmid, messageId: e.message_id, pushes: 0, pulled: false };
  });
  if (via === 'push') copy.pushes++;
  else copy.pulled = true;
}

/** Everything each device received: every push its sink answered 2xx, plus its inbox, paged by pull. */
export async function collect(
  call: Call,
  boxes: Boxes,
  devices: Iterable<Device>,
  sinks: Map<string, Sink>,
  sinkAccepted: (deviceId: string, index: number) => boolean,
): Promise<Received> {
  const received: Received = new Map();
  for (const device of devices) {
    const sink = sinks.get(device.deviceId);
    sink?.requests.forEach((r, i) => {
      if (sinkAccepted(device.deviceId, i)) note(received, boxes, device, r.json() as PushedEvent, 'push');
    });
    for (let after = 0; ; ) {
      const page = await call('GET', `/api/messages?after=${after}&limit=500`, { token: device.token });
      if (page.status !== 200) throw new Error(`pull: ${page.status} ${JSON.stringify(page.body)}`);
      for (const e of page.body.events as PushedEvent[]) note(received, boxes, device, e, 'pull');
      if (!page.body.has_more) break;
      after = page.body.next_after;
    }
  }
  return received;
}

interface Row {
  phase: string;
  sent: number;
  acked: number;
  /** Final answer a definite non-2xx (e.g. 503 from a listener) after all retries. */
  rejected: number;
  /** Retries exhausted with an answer that may have come after a commit (502/504/timeout). */
  inDoubt: number;
  /** Acknowledged and present exactly once (after dedupe) at every receiving device. */
  delivered: number;
  /** … of which at least one pushed device had it only by pull (its pushes were exhausted). */
  viaPull: number;
  /** Acknowledged but missing at one or more receiving devices. */
  lost: number;
  /** Extra copies before dedupe (same event pushed twice, or pushed and still in the inbox). */
  duplicates: number;
  /** Not acknowledged (final non-2xx) yet present at a device: must be 0. */
  rejectedDelivered: number;
  /** One message id per send: a second message for one client_message_id must be 0. */
  doubled: number;
  /** HTTP answers (and transport errors) of every attempt, by status. */
  answers: Record<string, number>;
}

export interface Tally {
  rows: Row[];
  total: Row;
  /** Human-readable violations, for assertion messages. */
  problems: string[];
}

const emptyRow = (phase: string): Row => ({
  phase,
  sent: 0,
  acked: 0,
  rejected: 0,
  inDoubt: 0,
  delivered: 0,
  viaPull: 0,
  lost: 0,
  duplicates: 0,
  rejectedDelivered: 0,
  doubled: 0,
  answers: {},
});

/** `pushed`: devices with a push address; "via pull" counts only those (a pull-only device always pulls). */
export function tally(
  records: SendRecord[],
  received: Received,
  phases: string[],
  pushed: Set<string> = new Set(),
): Tally {
  const byCmid = new Map<string, Map<string, Copy[]>>();
  const problems: string[] = [];
  for (const [deviceId, events] of received) {
    for (const copy of events.values()) {
      if (!copy.cmid) {
        problems.push(`device ${deviceId}: event ${copy.eventId} does not open or carries no id`);
        continue;
      }
      const perDevice = upsert(byCmid, copy.cmid, () => new Map<string, Copy[]>());
      perDevice.set(deviceId, [...(perDevice.get(deviceId) ?? []), copy]);
    }
  }
  const known = new Set(records.map((r) => r.cmid));
  for (const cmid of byCmid.keys()) if (!known.has(cmid)) problems.push(`unknown message ${cmid} delivered`);

  const rows = new Map(phases.map((p) => [p, emptyRow(p)]));
  for (const rec of records) {
    const row = upsert(rows, rec.phase, () => emptyRow(rec.phase));
    row.sent++;
    for (const a of rec.attempts) {
      const key = a.status === undefined ? String(a.transport) : String(a.status);
      row.answers[key] = (row.answers[key] ?? 0) + 1;
    }
    const perDevice = byCmid.get(rec.cmid) ?? new Map<string, Copy[]>();
    let missing = 0;
    let pulledOnly = false;
    for (const d of rec.receivers) {
      const copies = perDevice.get(d.deviceId) ?? [];
      if (!copies.length) missing++;
      if (copies.length > 1) {
        row.doubled++;
        problems.push(`${rec.cmid}: ${copies.length} different events at device ${d.deviceId}`);
      }
      const total = copies.reduce((n, c) => n + c.pushes + (c.pulled ? 1 : 0), 0);
      row.duplicates += Math.max(0, total - copies.length);
      if (pushed.has(d.deviceId) && copies.length && copies.every((c) => c.pushes === 0)) pulledOnly = true;
      if (rec.messageId && copies.some((c) => c.messageId !== rec.messageId)) {
        problems.push(`${rec.cmid}: acknowledged as ${rec.messageId}, delivered with another message id`);
      }
    }
    if (rec.outcome === 'acked') {
      row.acked++;
      if (missing) {
        row.lost++;
        problems.push(`${rec.cmid} (${rec.phase}): acknowledged, missing at ${missing} device(s)`);
      } else {
        row.delivered++;
        if (pulledOnly) row.viaPull++;
      }
    } else if (rec.outcome === 'rejected') {
      row.rejected++;
      if (perDevice.size) {
        row.rejectedDelivered++;
        problems.push(
          `${rec.cmid} (${rec.phase}): final answer ${JSON.stringify(rec.attempts.at(-1))}, delivered`,
        );
      }
    } else {
      row.inDoubt++;
    }
  }
  const list = [...rows.values()];
  const total = emptyRow('total');
  for (const r of list) {
    for (const k of [
      'sent',
      'acked',
      'rejected',
      'inDoubt',
      'delivered',
      'viaPull',
      'lost',
      'duplicates',
      'rejectedDelivered',
      'doubled',
    ] as const)
      total[k] += r[k];
    for (const [s, n] of Object.entries(r.answers)) total.answers[s] = (total.answers[s] ?? 0) + n;
  }
  return { rows: list, total, problems };
}

/** The per-fault table, as Markdown (pasted as is into the closing note). */
export function render(t: Tally): string {
  const head = [
    'fault',
    'sent',
    'acked',
    'rejected',
    'in doubt',
    'delivered',
    '(via pull)',
    'lost',
    'dup copies',
    'answers (status: count)',
  ];
  const line = (r: Row) => [
    r.phase,
    r.sent,
    r.acked,
    r.rejected,
    r.inDoubt,
    r.delivered,
    r.viaPull,
    r.lost,
    r.duplicates,
    Object.entries(r.answers)
      .sort()
      .map(([s, n]) => `${s}: ${n}`)
      .join(', '),
  ];
  const cells = [head, ...t.rows.map(line), line(t.total)].map((r) => r.map(String));
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const [first, ...rest] = cells;
  return [fmt(first ?? []), fmt(widths.map((w) => '-'.repeat(w))), ...rest.map(fmt)].join('\n');
}
