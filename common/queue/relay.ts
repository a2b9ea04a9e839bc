import { type Db, prepared, quickTransaction } from '../db/index.ts';
import type { Logger } from '../log.ts';
import { every } from '../periodic.ts';
import type { Broker, Publication } from './broker.ts';
import type { Delivery, LiveSignal } from './messages.ts';

interface OutboxRow {
  id: string;
  device_id: string;
  seq: string;
  event_id: string;
  request_id: string | null;
  created_at: Date;
}

export function publications(broker: Broker, rows: OutboxRow[]): Publication[] {
  const { deliveries, live } = broker.topology;
  return rows.flatMap((r) => {
    const d: Delivery = {
      device_id: r.device_id,
      seq: Number(r.seq),
      event_id: r.event_id,
      request_id: r.request_id,
      created_at: r.created_at.toISOString(),
      attempt: 0,
    };
    const signal: LiveSignal = { device_id: r.device_id, seq: Number(r.seq) };
    return [
      {
        exchange: '',
        routingKey: deliveries,
        content: Buffer.from(JSON.stringify(d)),
        options: {
          persistent: true,
          mandatory: true,
          messageId: `${r.event_id}:${r.id}`,
          contentType: 'application/json',
        },
      },
      {
        exchange: live,
        routingKey: r.device_id,
        content: Buffer.from(JSON.stringify(signal)),
        options: { persistent: false, contentType: 'application/json' },
      },
    ];
  });
}

/**
 * Moves one batch of outbox rows to RabbitMQ. The rows are claimed with SKIP LOCKED (several
 * listeners relay at once without waiting on each other) and deleted in the same transaction,
 * which commits only after the broker confirmed every message: a crash or a broker failure
 * rolls back and the rows stay for the next sweep (at-least-once; duplicates keep their event id).
 */
export async function relayBatch(db: Db, broker: Broker, batchSize: number): Promise<number> {
  return quickTransaction(db, async (conn) => {
    const { rows } = await prepared<OutboxRow>(
      conn,
      `DELETE FROM outbox WHERE id IN (
         SELECT id FROM outbox ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED)
       RETURNING id, device_id, seq, event_id, request_id, created_at`,
      [batchSize],
    );
    if (!rows.length) return 0;
    rows.sort((a, b) => Number(a.id) - Number(b.id));
    await broker.publish(publications(broker, rows));
    return rows.length;
  });
}

export interface OutboxRelay {
  /** Relays soon: call after committing a transaction that wrote outbox rows. Bursts coalesce. */
  kick(): void;
  stop(): Promise<void>;
}

/**
 * Runs in every listener: an in-process kick right after commit keeps push latency low, and a
 * periodic sweep picks up what a kick missed (broker down, another process crashed mid-batch).
 */
export function startOutboxRelay(opts: {
  db: Db;
  broker: Broker;
  log: Logger;
  batchSize: number;
  sweepMs: number;
}): OutboxRelay {
  const { db, broker, log, batchSize } = opts;
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = false;
  let failures = 0;

  async function drain(): Promise<void> {
    for (;;) {
      again = false;
      const n = await relayBatch(db, broker, batchSize);
      // A full batch means more may be waiting; a kick during the batch means new rows exist.
      if (stopped || (n < batchSize && !again)) return;
    }
  }

  function run(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = drain()
      .then(
        () => {
          if (failures) log.info({ failures }, 'outbox relay recovered');
          failures = 0;
        },
        (err: unknown) => {
          // Logged once per outage, not once per sweep.
          if (failures++ === 0) log.warn({ err }, 'outbox relay failed; rows stay for the next sweep');
        },
      )
      .finally(() => {
        running = null;
      });
    return running;
  }

  const sweep = every(opts.sweepMs, 'outbox-relay', log, run);
  return {
    kick() {
      if (stopped) return;
      if (running) again = true;
      else setImmediate(() => void run());
    },
    async stop() {
      stopped = true;
      await sweep.stop();
      await running;
    },
  };
}
