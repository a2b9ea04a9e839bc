import type { Tx } from '../../common/db/index.ts';
import type { PendingEvent } from '../../common/events.ts';
import { appendEvents, fromRequest, type OutboxEntry } from '../db/inbox.ts';
import type { Deps } from '../deps.ts';

/** Appends events inside the transaction of `withEvents`; returns how many were stored. */
export type Append = (events: PendingEvent[]) => Promise<number>;

/**
 * Runs `work` in one transaction and, once it committed, publishes the events it appended (and
 * outbox rows it wrote otherwise, handed to `wrote`), so a rolled-back attempt publishes nothing.
 */
export async function withEvents<T>(
  deps: Deps,
  requestId: string,
  work: (trx: Tx, append: Append, wrote: (rows: OutboxEntry[]) => void) => Promise<T>,
): Promise<T> {
  const { db, config } = deps;
  const rows: OutboxEntry[] = [];
  const wrote = (more: OutboxEntry[]) => {
    for (const r of more) rows.push(r);
  };
  const result = await db.transaction((trx) =>
    work(
      trx,
      async (events) => {
        const { outbox } = await appendEvents(trx, fromRequest(events, requestId), config.INBOX_TTL_DAYS);
        wrote(outbox);
        return outbox.length;
      },
      wrote,
    ),
  );
  deps.outboxWritten(rows);
  return result;
}
