import { type CostSources, type MessageCosts, openCostWindow } from './costs.ts';
import { cores, cpuMeter, type Groups } from './cpu.ts';
import { runLoad } from './load.ts';
import type { Progress } from './progress.ts';
import { type LoadShape, type LoadTarget, nowMs } from './protocol.ts';
import type { Sinks } from './sink.ts';
import { type Percentiles, percentiles, round, sleep } from './stats.ts';

export interface PhaseResult {
  name: string;
  shape: LoadShape;
  /** Answered 2xx. */
  accepted: number;
  acceptedPerSec: number;
  /** First copies of events pushed to the sinks during the load window, per second. */
  deliveredPerSec: number;
  /** Non-2xx answers and transport errors (by kind), plus open-loop arrivals skipped at the in-flight cap. */
  errors: number;
  errorKinds: Record<string, number>;
  skipped: number;
  /** Accepted messages whose push never arrived before arrivals stopped for `settle` seconds. */
  lost: number;
  /** Pushes of an event id that had already arrived. */
  duplicates: number;
  /** Pushes of messages the load generator never saw accepted (e.g. an answer lost in transit). */
  unmatched: number;
  badSignatures: number;
  verifiedSignatures: number;
  /** Request start (scheduled start in the open loop) → first signed push at the sink, ms. */
  /** Request start → push arrival, of the sends started after the warm-up (as the rates). */
  pushLatency: Percentiles;
  /** The same over the whole load, warm-up included. */
  pushLatencyWholeRun: Percentiles;
  warmupSeconds: number;
  /** Push latency per second of the load (by send start): where a tail comes from. */
  pushLatencyBySecond: (Percentiles & { second: number; count: number })[];
  /** Request start → 2xx answer at the client, ms. */
  requestLatency: Percentiles;
  /** Load end → last push. */
  drainSeconds: number;
  /** Cores used per process group while the load ran. */
  cpu: Record<string, number>;
  /** CPU ms per accepted message per process group, over the load and the settle time. */
  cpuMsPerMessage: Record<string, number>;
  /** Share of the load time some task waited for a CPU (PSI): near 1 means the machine was oversubscribed. */
  cpuStall: number | null;
  /**
   * PostgreSQL transactions and rows, AMQP publishes and acks, and CPU per delivered message, over
   * the CPU window (load and settle); null when the phase had no cost sources.
   */
  costs: MessageCosts | null;
}

export interface PhaseContext {
  sinks: Sinks;
  target: LoadTarget;
  progress: Progress;
  settleSeconds: number;
  cpuGroups: () => Groups;
  /** Counters read at the CPU window's start and end (pg_stat_database, the AMQP counters). */
  costs?: CostSources;
  /** Sampled while the load runs (soak: RSS). */
  onTick?: () => string;
}

/** Pushes expected per accepted send: one per recipient device (the ring has one device per user). */
const EVENTS_PER_SEND = 1;

/**
 * One bounded load: runs it in the load-generator process, then waits until every accepted
 * message has been pushed or no push arrived for `settleSeconds`, and matches the two sides.
 */
export async function runPhase(name: string, shape: LoadShape, ctx: PhaseContext): Promise<PhaseResult> {
  const arrivals = ctx.sinks.reset();
  const accepted = new Map<string, number>();
  // Counters and CPU are read at the same instants: here and where `overall` is taken.
  const costWindow = ctx.costs ? await openCostWindow(ctx.costs) : undefined;
  const meter = cpuMeter(ctx.cpuGroups);
  const started = nowMs();
  const total = shape.durationMs / 1000;
  const load = await runLoad(ctx.target, shape, {
    onAccepted: (batch) => {
      for (const [id, t] of batch) accepted.set(id, t);
    },
    onProgress: (p) => {
      const s = Math.min(total, (nowMs() - started) / 1000);
      const extra = ctx.onTick ? ` ${ctx.onTick()}` : '';
      ctx.progress.update(
        `${name}: ${s.toFixed(0)}/${total}s sent ${p.ok} (${p.errors} err, ${p.inFlight} in flight) pushed ${arrivals.events.size}${extra}`,
      );
    },
  });
  const duringLoad = meter();
  // Settle: wait while pushes still arrive, until every accepted message has been pushed.
  const loadEnded = nowMs();
  let lastCount = -1;
  let lastChange = nowMs();
  while (arrivals.events.size < accepted.size * EVENTS_PER_SEND) {
    if (arrivals.events.size !== lastCount) {
      lastCount = arrivals.events.size;
      lastChange = nowMs();
    } else if (nowMs() - lastChange > ctx.settleSeconds * 1000) break;
    ctx.progress.update(`${name}: settling, pushed ${arrivals.events.size}/${accepted.size}`);
    await sleep(200);
  }
  const overall = meter();
  const delivered = new Set<string>();
  // Rates and latency count from a warm-up of a tenth of the load on (at most 2 s): pools fill,
  // the JIT warms, and the previous phase's backlog (autovacuum, settling pushes) fades.
  const warm = Math.min(2_000, (load.endedAt - load.startedAt) / 10);
  const from = load.startedAt + warm;
  const latencies: number[] = [];
  const steadyLatencies: number[] = [];
  const bySecond: number[][] = [];
  let lastArrival = 0;
  let unmatched = 0;
  for (const [messageId, t] of arrivals.events.values()) {
    const start = accepted.get(messageId);
    lastArrival = Math.max(lastArrival, t);
    if (start === undefined) {
      unmatched++;
      continue;
    }
    delivered.add(messageId);
    latencies.push(t - start);
    if (start >= from) steadyLatencies.push(t - start);
    const second = Math.max(0, Math.floor((start - load.startedAt) / 1000));
    const bucket = bySecond[second] ?? [];
    bucket.push(t - start);
    bySecond[second] = bucket;
  }
  let lost = 0;
  for (const id of accepted.keys()) if (!delivered.has(id)) lost++;
  if (costWindow) ctx.progress.update(`${name}: waiting for PostgreSQL to publish its counters …`);
  const costs = (await costWindow?.end(overall.seconds, delivered.size)) ?? null;
  const windowS = (load.endedAt - from) / 1000;
  let acceptedInWindow = 0;
  for (const t of accepted.values()) if (t >= from && t < load.endedAt) acceptedInWindow++;
  let deliveredInWindow = 0;
  for (const [, t] of arrivals.events.values()) if (t >= from && t < load.endedAt) deliveredInWindow++;
  const result: PhaseResult = {
    name,
    shape,
    accepted: load.ok,
    acceptedPerSec: acceptedInWindow / windowS,
    deliveredPerSec: deliveredInWindow / windowS,
    errors: load.errors + load.skipped,
    errorKinds: load.errorKinds,
    skipped: load.skipped,
    lost,
    duplicates: arrivals.duplicates,
    unmatched,
    badSignatures: arrivals.badSignatures,
    verifiedSignatures: arrivals.verified,
    pushLatency: percentiles(steadyLatencies),
    pushLatencyWholeRun: percentiles(latencies),
    warmupSeconds: warm / 1000,
    pushLatencyBySecond: [...bySecond.entries()]
      .filter((e): e is [number, number[]] => e[1] !== undefined)
      .map(([second, xs]) => ({ second, count: xs.length, ...percentiles(xs) })),
    requestLatency: load.latency,
    drainSeconds: Math.max(0, (lastArrival - loadEnded) / 1000),
    cpu: cores(duringLoad),
    cpuMsPerMessage: Object.fromEntries(
      Object.entries(overall.seconds).map(([k, sec]) => [k, round((sec * 1000) / Math.max(1, load.ok))]),
    ),
    cpuStall: duringLoad.stall === null ? null : round(duringLoad.stall),
    costs,
  };
  ctx.progress.log(
    `${name}: ${round(result.acceptedPerSec)} sends/s, ${round(result.deliveredPerSec)} pushes/s, ` +
      `push p50/p99 ${round(result.pushLatency.p50)}/${round(result.pushLatency.p99)} ms, ` +
      `${result.errors} errors, ${lost} lost, ${result.duplicates} dup; ` +
      `CPU ms/msg ${Object.entries(result.cpuMsPerMessage)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}; ` +
      `cpu stall ${result.cpuStall ?? '?'}; ${costSummary(costs)}; slowest seconds (p99 ms): ${[
        ...result.pushLatencyBySecond,
      ]
        .sort((a, b) => b.p99 - a.p99)
        .slice(0, 3)
        .map((b) => `${b.second}s ${round(b.p99)}`)
        .join(', ')}`,
  );
  return result;
}

function costSummary(c: MessageCosts | null): string {
  if (!c) return 'no cost counters';
  const na = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : String(v));
  return (
    `per delivered message: PG tx ${na(c.pg?.transactionsPerMessage)}, rows ${na(c.pg?.rowsWrittenPerMessage)}, ` +
    `AMQP publishes ${na(c.amqpPublishesPerMessage)}, acks ${na(c.amqpAcksPerMessage)}, CPU ms ${na(c.cpuMs.total)}`
  );
}
