import { PG_STATS_FLUSH_MS, type PgCounters, type PgStats } from './pg-stats.ts';
import { metricsText, sumSamples } from './procs.ts';
import { round, sleep } from './stats.ts';

/** Process groups that are the system under test (the `bench` group is the load generator and sinks). */
const SERVER_GROUPS = ['listeners', 'senders', 'postgres', 'rabbitmq', 'nginx'] as const;

/** Counters scraped from each listener's and sender's metrics port. */
const AMQP_PUBLISHES = 'messenger_amqp_publishes_total';
const AMQP_ACKS = 'messenger_amqp_acks_total';

/** What one delivered message cost over a phase (load and settle), totals and per message. */
export interface MessageCosts {
  /** The divisor: accepted messages of the phase whose push arrived; with none, per-message figures are NaN. */
  delivered: number;
  pg: (PgCounters & { transactionsPerMessage: number; rowsWrittenPerMessage: number }) | null;
  /** Null until the listeners and senders export the counter. */
  amqpPublishes: number | null;
  amqpPublishesPerMessage: number | null;
  /** basic.ack frames; one frame may ack many messages (`multiple`). */
  amqpAcks: number | null;
  amqpAcksPerMessage: number | null;
  /** CPU ms per delivered message per process group, and `total` over the server groups. */
  cpuMs: Record<string, number>;
}

export interface CostSources {
  pg: PgStats | undefined;
  /** Metrics ports of the stack's listeners and senders (the current stack: scale restarts it). */
  metricsPorts: () => number[];
}

type Scrape = Map<number, { publishes: number | null; acks: number | null }>;

async function scrape(ports: number[]): Promise<Scrape> {
  const out: Scrape = new Map();
  await Promise.all(
    ports.map(async (port) => {
      const text = await metricsText(port);
      if (text !== null)
        out.set(port, { publishes: sumSamples(text, AMQP_PUBLISHES), acks: sumSamples(text, AMQP_ACKS) });
    }),
  );
  return out;
}

/** Sum over processes of end − start, for the processes that exported the counter both times. */
function counterDelta(start: Scrape, end: Scrape, key: 'publishes' | 'acks'): number | null {
  let sum: number | null = null;
  for (const [port, e] of end) {
    const a = start.get(port)?.[key];
    const b = e[key];
    if (a === null || a === undefined || b === null) continue;
    sum = (sum ?? 0) + b - a;
  }
  return sum;
}

export interface CostWindow {
  /** Call at the instant the CPU window closes, with its CPU seconds per group. */
  end(cpuSeconds: Record<string, number>, delivered: number): Promise<MessageCosts>;
}

/**
 * Opens a cost window now (call it where the CPU meter starts). `end` scrapes the AMQP counters
 * at once, then waits until PostgreSQL has published the window's counters (PG_STATS_FLUSH_MS
 * after the window closed) before it reads `pg_stat_database`: whatever the stack commits while
 * idle in that wait (relay sweeps) is counted too, so the PostgreSQL figures are an upper bound.
 */
export async function openCostWindow(sources: CostSources): Promise<CostWindow> {
  const [pg0, amqp0] = await Promise.all([sources.pg?.read() ?? null, scrape(sources.metricsPorts())]);
  return {
    async end(cpuSeconds, delivered) {
      const closedAt = Date.now();
      const amqp1 = await scrape(sources.metricsPorts());
      await sleep(Math.max(0, closedAt + PG_STATS_FLUSH_MS - Date.now()));
      const pg1 = (await sources.pg?.read()) ?? null;
      // Nothing delivered: no per-message figure (NaN, printed as – and stored as null).
      const n = delivered || Number.NaN;
      const per = (v: number | null) => (v === null ? null : round(v / n));
      const pg =
        pg0 && pg1
          ? {
              xactCommit: pg1.xactCommit - pg0.xactCommit,
              xactRollback: pg1.xactRollback - pg0.xactRollback,
              rowsWritten: pg1.rowsWritten - pg0.rowsWritten,
              transactionsPerMessage: round((pg1.xactCommit - pg0.xactCommit) / n),
              rowsWrittenPerMessage: round((pg1.rowsWritten - pg0.rowsWritten) / n),
            }
          : null;
      const publishes = counterDelta(amqp0, amqp1, 'publishes');
      const acks = counterDelta(amqp0, amqp1, 'acks');
      const cpuMs: Record<string, number> = {};
      let total = 0;
      for (const [k, s] of Object.entries(cpuSeconds)) {
        cpuMs[k] = round((s * 1000) / n);
        if ((SERVER_GROUPS as readonly string[]).includes(k)) total += (s * 1000) / n;
      }
      cpuMs.total = round(total);
      return {
        delivered,
        pg,
        amqpPublishes: publishes,
        amqpPublishesPerMessage: per(publishes),
        amqpAcks: acks,
        amqpAcksPerMessage: per(acks),
        cpuMs,
      };
    },
  };
}

/** Waits out PostgreSQL's stats flush so earlier work (setup, a restart) does not land in the next window. */
export function pgStatsQuiet(): Promise<void> {
  return sleep(PG_STATS_FLUSH_MS);
}
