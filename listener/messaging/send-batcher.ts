import {
  type AppendEvent,
  type Appended,
  appendEvents,
  type NewMessage,
  type OutboxEntry,
} from '../../common/db/inbox.ts';
import type { Db } from '../../common/db/index.ts';
import type { Logger } from '../../common/log.ts';
import { isTransientConflict } from '../http/route.ts';

export interface SendJob {
  message: NewMessage;
  /** The message's events, each gated on the message (`gate: message.id`). */
  events: AppendEvent[];
}

/** `stored`, or `taken`: the sender device's client_message_id is already used; nothing was stored. */
export type SendResult = 'stored' | 'taken';

export type SendBatcher = (job: SendJob) => Promise<SendResult>;

interface Waiting {
  job: SendJob;
  resolve(r: SendResult): void;
  reject(err: unknown): void;
}

const MAX_ATTEMPTS = 3;

/**
 * Group commit for direct sends: the sends that arrive while one statement runs are stored
 * together by the next one (at most `max`), so PostgreSQL executes and commits once per batch
 * instead of once per message; an idle listener sends each message at once. Every job still gets
 * its own answer, and only after the commit: a batch-mate whose client_message_id is taken
 * stores nothing and gets `taken`; a deadlock retries the whole batch (nothing was written); any
 * other failure of a batch is retried one job at a time, so it fails only the job that causes it.
 * `committed` gets the outbox rows of every batch to publish them.
 */
export function sendBatcher(opts: {
  db: Db;
  ttlDays: number;
  max: number;
  log: Logger;
  committed(rows: OutboxEntry[]): void;
}): SendBatcher {
  let queue: Waiting[] = [];
  let running = false;

  async function store(jobs: SendJob[]): Promise<Appended> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await appendEvents(
          opts.db,
          jobs.flatMap((j) => j.events),
          opts.ttlDays,
          jobs.map((j) => j.message),
        );
      } catch (err) {
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
      done = await store(batch.map((w) => w.job));
    } catch (err) {
      if (batch.length === 1) batch[0]?.reject(err);
      else for (const w of batch) await run([w]);
      return;
    }
    opts.committed(done.outbox);
    for (const w of batch) w.resolve(done.inserted.has(w.job.message.id) ? 'stored' : 'taken');
  }

  async function drain(): Promise<void> {
    running = true;
    while (queue.length) {
      const batch = queue.slice(0, opts.max);
      queue = queue.slice(batch.length);
      await run(batch);
    }
    running = false;
  }

  return (job) =>
    new Promise<SendResult>((resolve, reject) => {
      queue.push({ job, resolve, reject });
      // The first send after idle waits one tick only, to take along what arrived with it.
      if (!running && queue.length === 1) setImmediate(() => void drain());
    });
}
