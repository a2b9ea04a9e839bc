import { type Db, prepared, quickTransaction } from '../../common/db/index.ts';
import type { Logger } from '../../common/log.ts';
import type { Broker, Publication } from '../../common/queue/broker.ts';
import { type Delivery, deliveryPublications, liveSignalPublication } from '../../common/queue/messages.ts';
import type { OutboxEntry } from '../db/inbox.ts';
import { every } from '../jobs/periodic.ts';

/** How long confirmed rows wait for a send statement to delete them along with its writes. */
const DELETE_AFTER_MS = 50;

/**
 * The deliveries of these events, a message per delivery shard (deliveryPublications), plus
 * one live wake-up for the whole batch that every listener holding a socket of one of its devices
 * receives once (see the contract in ./messages.ts): a stream re-reads the inbox on a wake, so
 * that says everything. An event whose device had no push address at its commit gets no delivery:
 * the sender would only skip it, and setting an address later re-queues what is pending (the
 * send statement and the address change both lock the device row, so one of them sees the other).
 */
function publications(broker: Broker, rows: OutboxEntry[]): Publication[] {
  const wakes = new Map<string, number>();
  const deliveries = rows.flatMap((r) => {
    wakes.set(r.device_id, Math.max(wakes.get(r.device_id) ?? 0, r.seq));
    if (r.body !== undefined && !r.address) return [];
    const delivery: Delivery = {
      device_id: r.device_id,
      seq: r.seq,
      event_id: r.event_id,
      request_id: r.request_id,
      created_at: r.created_at.toISOString(),
      attempt: 0,
      ...(r.body !== undefined && { body: r.body, address: r.address ?? null }),
    };
    return [{ delivery, outboxId: r.id }];
  });
  const out = deliveryPublications(broker.topology, deliveries);
  if (wakes.size) out.push(liveSignalPublication(broker.topology, wakes));
  return out;
}

/**
 * The sweep: moves up to `batchSize` outbox rows older than `minAgeMs` (each lists the events of
 * one statement) to RabbitMQ. Younger rows are being published by the listener that wrote them.
 * Rows are claimed with SKIP LOCKED (several listeners sweep at once without waiting on each
 * other) and deleted in the same transaction, which commits only after the broker confirmed
 * every message: a crash or a broker failure rolls back and the rows stay for the next sweep
 * (at-least-once; duplicates keep their event id). Returns the rows it moved.
 */
export async function relayBatch(db: Db, broker: Broker, batchSize: number, minAgeMs = 0): Promise<number> {
  return quickTransaction(db, async (conn) => {
    const { rows } = await prepared<{
      id: string;
      created_at: Date;
      device_ids: string[];
      seqs: string[];
      event_ids: string[];
      request_ids: (string | null)[];
    }>(
      conn,
      `DELETE FROM outbox WHERE id IN (
         SELECT id FROM outbox WHERE created_at < now() - make_interval(secs => ?)
          ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED)
       RETURNING id, created_at, device_ids, seqs, event_ids, request_ids`,
      [minAgeMs / 1000, batchSize],
    );
    if (!rows.length) return 0;
    rows.sort((a, b) => Number(a.id) - Number(b.id));
    const events = rows.flatMap((r) =>
      r.event_ids.map((event_id, n) => ({
        id: r.id,
        created_at: r.created_at,
        event_id,
        device_id: r.device_ids[n] as string,
        seq: Number(r.seqs[n]),
        request_id: r.request_ids[n] ?? null,
      })),
    );
    await broker.publish(publications(broker, events));
    return rows.length;
  });
}

/** Where confirmed outbox rows wait to be deleted; a send statement may take them along. */
export interface Published {
  /** The ids confirmed so far, now this caller's to delete (return them when that fails). */
  take(): string[];
  giveBack(ids: string[]): void;
}

export interface OutboxRelay extends Published {
  /**
   * Publishes the events of outbox rows that just committed at once (those of one turn of the
   * event loop together), awaits their confirms as one batch without holding up the next publish,
   * then deletes the rows (deletes of rows confirmed meanwhile go together). A failure leaves the
   * rows to the sweep.
   */
  publish(events: OutboxEntry[]): void;
  stop(): Promise<void>;
}

/**
 * Runs in every listener. The listener that committed publishes its own rows at once; a periodic
 * sweep relays only leftovers (rows older than `sweepAgeMs`: the writer crashed, or the broker
 * was down when it tried). Confirmed rows are deleted by the next send statement when one comes
 * within DELETE_AFTER_MS (`take`), else by a statement of their own.
 */
export function startOutboxRelay(opts: {
  db: Db;
  broker: Broker;
  log: Logger;
  batchSize: number;
  sweepMs: number;
  sweepAgeMs: number;
}): OutboxRelay {
  const { db, broker, log, batchSize } = opts;
  let stopped = false;
  let failures = 0;

  const inFlight = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  // Confirmed rows collect for DELETE_AFTER_MS: a send statement takes them along (`take`), or
  // the timer deletes all that collected with one statement.
  let confirmed: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  function take(): string[] {
    const ids = confirmed;
    confirmed = [];
    return ids;
  }
  function deleteConfirmed(): void {
    clearTimeout(timer);
    timer = undefined;
    const ids = take();
    if (!ids.length) return;
    track(
      prepared(db, 'DELETE FROM outbox WHERE id = ANY(?::bigint[])', [ids]).then(
        () => {},
        (err: unknown) => log.warn({ err }, 'outbox delete failed; the sweep relays the rows again'),
      ),
    );
  }
  function confirm(ids: string[]): void {
    if (!ids.length) return;
    for (const id of ids) confirmed.push(id);
    timer ??= setTimeout(deleteConfirmed, DELETE_AFTER_MS);
  }
  let pending: OutboxEntry[] = [];
  function flush(): void {
    const rows = pending;
    pending = [];
    // All in one publish: an outbox row is deleted only once every one of its events is
    // confirmed (deliveries travel up to 64 per message, so the publish stays small).
    const ids = [...new Set(rows.map((r) => r.id))];
    track(
      broker.publish(publications(broker, rows)).then(
        () => confirm(ids),
        (err: unknown) =>
          log.warn({ err, rows: ids.length }, 'outbox publish failed; the sweep relays the rows'),
      ),
    );
  }

  async function sweep(): Promise<void> {
    try {
      // A full batch means more may be waiting.
      while (!stopped && (await relayBatch(db, broker, batchSize, opts.sweepAgeMs)) === batchSize) {}
      if (failures) log.info({ failures }, 'outbox relay recovered');
      failures = 0;
    } catch (err) {
      // Logged once per outage, not once per sweep.
      if (failures++ === 0) log.warn({ err }, 'outbox relay failed; rows stay for the next sweep');
    }
  }

  const sweeper = every(opts.sweepMs, 'outbox-relay', log, sweep);
  return {
    take,
    giveBack: confirm,
    publish(rows) {
      if (stopped || !rows.length) return;
      if (!pending.length) setImmediate(flush);
      for (const r of rows) pending.push(r);
    },
    async stop() {
      stopped = true;
      await sweeper.stop();
      if (pending.length) flush();
      await Promise.allSettled([...inFlight]);
      deleteConfirmed();
      await Promise.allSettled([...inFlight]);
    },
  };
}
