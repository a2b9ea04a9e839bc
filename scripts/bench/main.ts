/**
 * `npm run bench`: this machine's raw ceilings, then the whole pipeline through nginx, in one run,
 * printed as one table (figure, ceiling, ratio) and written to results/ as JSON + Markdown.
 * Everything listens on 127.0.0.1, every phase is bounded in time, and the bench stops what it
 * started (by PID) even when a phase fails.
 */
import { rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../common/config.ts';
import { ROOT } from '../stack/index.ts';
import { type BenchArgs, parseBenchArgs } from './args.ts';
import { type Ceilings, measureCeilings } from './ceilings/index.ts';
import { type CostSources, pgStatsQuiet } from './costs.ts';
import { serviceGroups, withChildren } from './cpu.ts';
import { PgStats } from './pg-stats.ts';
import { type PhaseContext, type PhaseResult, runPhase } from './phase.ts';
import { heapUsedKiB, rssKiB } from './procs.ts';
import { Progress } from './progress.ts';
import { project, projectionText } from './projection.ts';
import type { LoadTarget } from './protocol.ts';
import { type BenchResults, rows, type SoakSample, textTable, writeResults } from './report.ts';
import { createUsers, prepareSends, serverKey } from './setup.ts';
import { startSinks } from './sink.ts';
import {
  type BenchEnv,
  type BenchStack,
  cleanupEnv,
  externalStack,
  prepareEnv,
  startBenchStack,
} from './stack.ts';
import { round } from './stats.ts';

const args: BenchArgs = parseBenchArgs(process.argv.slice(2));
const progress = new Progress();
const results: BenchResults = {
  startedAt: new Date().toISOString(),
  machine: { cpus: cpus().length, node: process.version },
  args: { ...args },
};
const sinks = await startSinks(args.sinks, args.verifyEvery);
let env: BenchEnv | undefined;
let stack: BenchStack | undefined;
let pgStats: PgStats | undefined;
let failed = false;

/** `database`: the stack's, so PostgreSQL's CPU leaves out other databases' backends. */
function groups(s: BenchStack, database: string) {
  return () => ({
    listeners: s.listeners.map((p) => p.pid),
    senders: s.senders.map((p) => p.pid),
    nginx: s.nginxPid ? withChildren(s.nginxPid) : [],
    ...serviceGroups(database),
    bench: [process.pid],
  });
}

async function start(listeners: number): Promise<BenchStack> {
  if (args.url) return externalStack(args.url);
  if (!env) throw new Error('no environment');
  progress.update(`starting the stack: ${listeners} listener(s), ${args.senders} sender(s) …`);
  const s = await startBenchStack(env, listeners, args.senders);
  progress.log(`stack up at ${s.url}: ${listeners} listener(s), ${args.senders} sender(s)`);
  return s;
}

/** Lets PostgreSQL publish the counters of what came before (setup, a restart) before a phase counts. */
async function statsQuiet(): Promise<void> {
  if (!pgStats) return;
  progress.update('waiting for PostgreSQL to publish its counters before the next phase …');
  await pgStatsQuiet();
}

/** Closed-loop peak → the open-loop rate: half of what the whole pipeline sustained. */
function halfPeak(r: PhaseResult | undefined): number {
  if (args.rate) return args.rate;
  if (!r) return 50;
  return Math.max(1, Math.round(Math.min(r.acceptedPerSec, r.deliveredPerSec || r.acceptedPerSec) / 2));
}

const stopOnSignal = () => {
  progress.log('interrupted: stopping what the bench started');
  failed = true;
  void (async () => {
    await stack?.stop().catch(() => {});
    if (env) await cleanupEnv(env, { runDir: true, database: false }).catch(() => {});
    process.exit(130);
  })();
};
process.once('SIGINT', stopOnSignal);
process.once('SIGTERM', stopOnSignal);

try {
  if (!args.url) env = await prepareEnv({ logLevel: args.logLevel, cpuProf: args.cpuProf, extra: args.env });
  const rawDir = join(ROOT, 'run', `bench-raw-${process.pid}`);
  // With --url the ceilings still measure this machine's services (DATABASE_URL, AMQP_URL).
  const config = env?.config ?? loadConfig();
  if (args.phases.includes('raw')) {
    const ceilings: Ceilings = await measureCeilings(
      {
        databaseUrl: config.DATABASE_URL,
        amqpUrl: config.AMQP_URL,
        durationMs: args.ceilingDuration * 1000,
        connections: args.concurrency,
        queueArguments: { 'x-queue-type': config.AMQP_QUEUE_TYPE },
        runDir: env?.runDir ?? rawDir,
        httpTool: args.ceilingTool,
      },
      sinks,
      progress,
    );
    results.ceilings = ceilings;
  }
  const loadPhases = args.phases.filter((p) => p !== 'raw');
  if (loadPhases.length) {
    stack = await start(args.listeners);
    progress.update(`creating ${args.users} users …`);
    sinks.setPublicKey(await serverKey(stack.url));
    const users = await createUsers(stack.url, args.users, sinks);
    const target: LoadTarget = {
      origin: stack.url,
      requests: prepareSends(users, 4),
      connections: args.concurrency,
      recordMessageIds: true,
    };
    progress.log(`${users.length} users ready, ${target.requests.length} sends encrypted ahead of time`);
    // The stack's database (with --url: DATABASE_URL's), read over a connection of its own.
    pgStats = await PgStats.open(config.DATABASE_URL).catch((err: unknown) => {
      progress.log(`PostgreSQL counters unavailable (${String(err)}): transactions per message will be n/a`);
      return undefined;
    });
    await statsQuiet();
    const costs = (s: BenchStack): CostSources => ({
      pg: pgStats,
      metricsPorts: () => [...s.listeners, ...s.senders].map((p) => p.metricsPort),
    });
    const ctx = (s: BenchStack): PhaseContext => ({
      sinks,
      target: { ...target, origin: s.url },
      progress,
      settleSeconds: args.settle,
      cpuGroups: groups(s, decodeURIComponent(new URL(config.DATABASE_URL).pathname.slice(1))),
      costs: costs(s),
    });
    const ms = args.duration * 1000;
    if (args.phases.includes('closed')) {
      results.closed = await runPhase(
        'closed',
        { kind: 'closed', concurrency: args.concurrency, durationMs: ms },
        ctx(stack),
      );
    }
    if (args.phases.includes('open')) {
      const rate = halfPeak(results.closed);
      results.open = await runPhase(
        'open',
        { kind: 'open', ratePerSec: rate, durationMs: ms, maxInFlight: Math.max(256, args.concurrency * 4) },
        ctx(stack),
      );
    }
    if (args.phases.includes('soak')) {
      const rate = halfPeak(results.closed);
      const procs = [...stack.listeners, ...stack.senders];
      const samples: SoakSample[] = [];
      const t0 = Date.now();
      const sample = async () => {
        const s: SoakSample = { atSeconds: (Date.now() - t0) / 1000, rssKiB: {}, heapUsedKiB: {} };
        for (const p of procs) {
          s.rssKiB[p.name] = rssKiB(p.pid);
          s.heapUsedKiB[p.name] = await heapUsedKiB(p.metricsPort);
        }
        samples.push(s);
      };
      const every = Math.max(2_000, (args.soak * 1000) / 60);
      let last = 0;
      const result = await runPhase(
        'soak',
        {
          kind: 'open',
          ratePerSec: rate,
          durationMs: args.soak * 1000,
          maxInFlight: Math.max(256, args.concurrency * 4),
        },
        {
          ...ctx(stack),
          onTick: () => {
            if (Date.now() - last >= every) {
              last = Date.now();
              void sample();
            }
            const s = samples.at(-1);
            const mib = (v: number | null | undefined) => round((v ?? 0) / 1024);
            return s
              ? `RSS/heap ${procs.map((p) => `${p.name} ${mib(s.rssKiB[p.name])}/${mib(s.heapUsedKiB[p.name])}M`).join(' ')}`
              : '';
          },
        },
      );
      await sample();
      // A GC'd heap saws up and down, so compare medians, not two single samples: the middle of
      // the soak after its first tenth (warm-up: pools and JIT fill) against its last third.
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
      const growthOf = (of: (s: SoakSample) => number | null | undefined) => {
        const within = (from: number, to: number) =>
          samples
            .filter((x) => x.atSeconds >= from && x.atSeconds < to)
            .map(of)
            .filter((v): v is number => typeof v === 'number');
        const early = median(within(args.soak / 10, args.soak / 3 + args.soak / 10));
        const late = median(within((args.soak * 2) / 3, Number.POSITIVE_INFINITY));
        return ((late - early) / early) * 100;
      };
      const growth: Record<string, number> = {};
      const heapGrowth: Record<string, number> = {};
      for (const p of procs) {
        growth[p.name] = growthOf((s) => s.rssKiB[p.name]);
        heapGrowth[p.name] = growthOf((s) => s.heapUsedKiB[p.name]);
      }
      results.soak = { result, samples, growth, heapGrowth };
    }
    if (args.phases.includes('scale')) {
      if (args.url)
        progress.log('scale: skipped with --url (the bench cannot restart a stack it did not start)');
      else {
        results.scale = [];
        for (const n of args.scale) {
          await stack.stop();
          stack = await start(n);
          await statsQuiet();
          results.scale.push({
            listeners: n,
            result: await runPhase(
              `scale ${n}`,
              { kind: 'closed', concurrency: args.concurrency, durationMs: ms },
              ctx(stack),
            ),
          });
        }
      }
    }
  }
} catch (err) {
  failed = true;
  progress.log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  await stack?.stop().catch((err: unknown) => progress.log(`stopping the stack failed: ${String(err)}`));
  await pgStats?.close();
  await sinks.close();
  if (env)
    await cleanupEnv(env, { runDir: failed || args.cpuProf !== undefined, database: failed }).catch(() => {});
  else await rm(join(ROOT, 'run', `bench-raw-${process.pid}`), { recursive: true, force: true });
}

const basis = results.closed?.costs ? results.closed : results.open;
const projection = basis && project(basis, args.project, results.machine.cpus, args.pgCommitCeiling);
if (projection) results.projection = projection;
const table = rows(results);
process.stdout.write(`\n${textTable(table)}\n\n`);
if (results.projection) process.stdout.write(`${projectionText(results.projection)}\n\n`);
const files = await writeResults(args.out, results, table);
process.stdout.write(`results: ${files.join(', ')}\n`);
if (env && failed)
  process.stdout.write(
    `logs kept in ${env.runDir}, database ${new URL(env.config.DATABASE_URL).pathname.slice(1)} kept\n`,
  );
const faults = [
  results.closed,
  results.open,
  results.soak?.result,
  ...(results.scale ?? []).map((s) => s.result),
]
  .filter((r): r is PhaseResult => r !== undefined)
  .reduce((n, r) => n + r.lost + r.badSignatures, 0);
process.exit(failed || faults ? 1 : 0);
