import type { Db } from '../../common/db/index.ts';
import { type Waiting as GroupWaiting, groupCommit } from '../../common/group-commit.ts';
import type { Logger } from '../../common/log.ts';
import {
  type AppendEvent,
  type Appended,
  appendEvents,
  type NewMessage,
  type OutboxEntry,
} from '../db/inbox.ts';
import { isTransientConflict } from '../http/route.ts';
import type { Published } from './relay.ts';

interface SendJob {
  message: NewMessage;
  /** The message's events, each gated on the message (`gate: message.id`). */
  events: AppendEvent[];
}

/**
 * `stored`; `taken`: the sender device's client_message_id is already used; `full`: a receiving
 * device's inbox is at its limit. Nothing is stored but for `stored`.
 */
export type SendResult = 'stored' | 'taken' | 'full';

export type SendBatcher = (job: SendJob) => Promise<SendResult>;

type Waiting = GroupWaiting<SendJob, SendResult>;

const MAX_ATTEMPTS = 3;

/**
 * Group commit for direct sends: the sends that arrive while a statement runs are stored together
 * by the next one (at most `max`), so PostgreSQL executes and commits once per batch instead of
 * once per message; an idle listener stores each message at once. One statement at a time: a
 * send waits at most for the one running (a commit here takes well under a millisecond) and,
 * while sends keep coming, `lingerMs` for company; each batch takes all that arrived meanwhile.
 * Measured back to back against two at a time: 5 % less CPU per message in the closed loop,
 * open-loop p50 22 → 18 ms; the linger (12 ms) took another 10 % off the open loop's CPU.
 *
 * Every job still gets its own answer, and only after the commit: a batch-mate whose
 * client_message_id is taken or whose recipient's inbox is full stores nothing (`taken`,
 * `full`); a deadlock retries the whole batch (nothing was written); any other failure of a batch
 * is retried one job at a time, so it fails only the job that causes it. `committed` gets the
 * outbox rows of every batch to publish them.
 */
export function sendBatcher(opts: {
  db: Db;
  ttlDays: number;
  inboxMax: number;
  max: number;
  /** While sends keep coming, a free statement waits this long for company (groupCommit's busyOnly). */
  lingerMs: number;
  log: Logger;
  committed(rows: OutboxEntry[]): void;
  /** Confirmed outbox rows the batch statement deletes on the way (the relay's). */
  published?: Published;
}): SendBatcher {
  async function store(jobs: SendJob[]): Promise<Appended> {
    for (let attempt = 1; ; attempt++) {
      const published = opts.published?.take() ?? [];
      try {
        return await appendEvents(
          opts.db,
          jobs.flatMap((j) => j.events),
          opts.ttlDays,
          { messages: jobs.map((j) => j.message), published, inboxMax: opts.inboxMax },
        );
      } catch (err) {
        opts.published?.giveBack(published);
        if (attempt >= MAX_ATTEMPTS || !isTransientConflict(err)) throw err;
        opts.log.warn(
          { attempt, code: (err as { code?: string }).code, jobs: jobs.length },
          'send batch conflict, retrying',
        );
      }
    }
  }

  async function run(batch: Waiting[]): Promise<void> {
    let done: Appended;
    try {
      done = await store(batch.map((w) => w.input));
    } catch (err) {
      if (batch.length === 1) batch[0]?.reject(err);
      else for (const w of batch) await run([w]);
      return;
    }
    try {
      opts.committed(done.outbox);
    } catch (err) {
      // Stored all the same: the sweep relays the rows.
      opts.log.warn({ err }, 'committed rows not handed to the relay');
    }
    for (const w of batch) {
      const id = w.input.message.id;
      w.resolve(done.inserted.has(id) ? 'stored' : done.full.has(id) ? 'full' : 'taken');
    }
  }

  return groupCommit(run, { max: opts.max, lingerMs: opts.lingerMs, busyOnly: true });
}
