import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Ceilings } from './ceilings/index.ts';
import type { MessageCosts } from './costs.ts';
import { PG_STATS_FLUSH_MS } from './pg-stats.ts';
import type { PhaseResult } from './phase.ts';
import { PROJECTION_TITLE, type Projection, projectionTable } from './projection.ts';
import { round } from './stats.ts';

export interface SoakSample {
  atSeconds: number;
  rssKiB: Record<string, number | null>;
  heapUsedKiB: Record<string, number | null>;
}

interface ScaleStep {
  listeners: number;
  result: PhaseResult;
}

export interface BenchResults {
  startedAt: string;
  machine: { cpus: number; node: string };
  args: Record<string, unknown>;
  ceilings?: Ceilings;
  closed?: PhaseResult;
  open?: PhaseResult;
  scale?: ScaleStep[];
  soak?: {
    result: PhaseResult;
    samples: SoakSample[];
    /** RSS growth per process, % (median of the last third vs the early window). */
    growth: Record<string, number>;
    /** The same for the V8 heap in use. */
    heapGrowth: Record<string, number>;
  };
  /** Computed from the closed loop's per-message costs (the open loop's without one). */
  projection?: Projection;
}

export interface Row {
  figure: string;
  value: string;
  ceiling: string;
  ratio: string;
}

const fmt = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '–' : String(round(n)));
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || !b || !Number.isFinite(a) ? '–' : `${Math.round((a / b) * 100)} %`;

/** The slowest raw stage: what a delivered event/s can at best reach on this machine. */
function slowestStage(c: Ceilings): { name: string; perSec: number } {
  const stages: [string, number][] = [
    ['PostgreSQL send statement', c.postgres],
    ['RabbitMQ confirmed publish', c.rabbitmq],
    ['nginx TLS proxy', c.nginx],
    ['sink POST', c.sink],
  ];
  stages.sort((a, b) => a[1] - b[1]);
  const [name, perSec] = stages[0] as [string, number];
  return { name, perSec };
}

/**
 * Each raw ceiling has the whole machine to itself; the pipeline runs every stage on the same
 * cores. If a delivered message cost nothing but its raw work (one send statement, two confirmed
 * publishes — delivery and live wake-up — one TLS proxied request, one push POST), the machine
 * would deliver 1 / Σ(work / ceiling) per second: the bound for any implementation on these cores.
 */
function sharedCeiling(c: Ceilings): number {
  return 1 / (1 / c.postgres + 2 / c.rabbitmq + 1 / c.nginx + 1 / c.sink);
}

const na = (n: number | null | undefined) => (n === null || n === undefined ? 'n/a' : fmt(n));

/** The cost-per-delivered-message block of one phase. */
function costRows(phase: string, c: MessageCosts | null, targets: boolean): Row[] {
  if (!c) return [];
  const m = c.cpuMs;
  return [
    {
      figure: `${phase}: cost per delivered message: PostgreSQL transactions (reads included) | rows written`,
      value: `${na(c.pg?.transactionsPerMessage)} | ${na(c.pg?.rowsWrittenPerMessage)}`,
      ceiling: targets ? 'tx ≤ 0.5' : '',
      ratio: targets && c.pg ? ratio(c.pg.transactionsPerMessage, 0.5) : '',
    },
    {
      figure: `${phase}: cost per delivered message: AMQP publishes | ack frames`,
      value: `${na(c.amqpPublishesPerMessage)} | ${na(c.amqpAcksPerMessage)}`,
      ceiling: '',
      ratio: '',
    },
    {
      figure: `${phase}: cost per delivered message: CPU ms listeners | senders | pg | rabbit | nginx = total`,
      value: `${[m.listeners, m.senders, m.postgres, m.rabbitmq, m.nginx].map(fmt).join(' | ')} = ${fmt(m.total)}`,
      ceiling: '',
      ratio: '',
    },
  ];
}

function faults(r: PhaseResult): string {
  return `${r.errors} err / ${r.lost} lost / ${r.duplicates} dup`;
}

export function rows(r: BenchResults): Row[] {
  const out: Row[] = [];
  const c = r.ceilings;
  if (c) {
    out.push({
      figure: `raw: PostgreSQL send statements/s (${c.tools.postgres}: prepared, 1 message and 1 commit each)`,
      value: fmt(c.postgres),
      ceiling: '',
      ratio: '',
    });
    out.push({
      figure: `raw: RabbitMQ confirmed publishes/s (${c.tools.rabbitmq})`,
      value: fmt(c.rabbitmq),
      ceiling: '',
      ratio: '',
    });
    out.push({
      figure: `raw: nginx TLS proxy req/s (${c.tools.nginx})`,
      value: fmt(c.nginx),
      ceiling: '',
      ratio: '',
    });
    out.push({ figure: `raw: sink POST/s (${c.tools.sink})`, value: fmt(c.sink), ceiling: '', ratio: '' });
  }
  const slowest = c ? slowestStage(c) : undefined;
  const sendCeiling = c ? Math.min(c.postgres, c.nginx) : undefined;
  if (r.closed) {
    const s = r.closed.shape.kind === 'closed' ? r.closed.shape.concurrency : 0;
    out.push({
      figure: `accepted sends/s (closed loop, ${s} concurrent)`,
      value: fmt(r.closed.acceptedPerSec),
      ceiling: fmt(sendCeiling),
      ratio: ratio(r.closed.acceptedPerSec, sendCeiling),
    });
    out.push({
      figure: `delivered events/s (closed loop) vs slowest stage${slowest ? ` (${slowest.name})` : ''}`,
      value: fmt(r.closed.deliveredPerSec),
      ceiling: fmt(slowest?.perSec),
      ratio: ratio(r.closed.deliveredPerSec, slowest?.perSec),
    });
    if (c) {
      const shared = sharedCeiling(c);
      out.push({
        figure: 'delivered events/s (closed loop) vs all raw stages sharing the cores',
        value: fmt(r.closed.deliveredPerSec),
        ceiling: fmt(shared),
        ratio: ratio(r.closed.deliveredPerSec, shared),
      });
    }
    out.push({
      figure: 'closed loop: errors / lost / duplicates',
      value: faults(r.closed),
      ceiling: '0',
      ratio: '',
    });
    const m = r.closed.cpuMsPerMessage;
    out.push({
      figure: 'closed loop: CPU ms/message listeners | senders | pg | rabbit | nginx',
      value: [m.listeners, m.senders, m.postgres, m.rabbitmq, m.nginx].map(fmt).join(' | '),
      ceiling: '',
      ratio: '',
    });
    out.push({
      figure: 'closed loop: CPU stall (PSI some; near 1 = machine oversubscribed)',
      value: fmt(r.closed.cpuStall ?? Number.NaN),
      ceiling: '',
      ratio: '',
    });
    out.push(...costRows('closed loop', r.closed.costs, true));
  }
  if (r.open) {
    const rate = r.open.shape.kind === 'open' ? r.open.shape.ratePerSec : 0;
    const l = r.open.pushLatency;
    out.push({
      figure: `push latency p50/p95/p99/max ms (open loop, ${fmt(rate)}/s, after ${fmt(r.open.warmupSeconds)} s warm-up)`,
      value: `${fmt(l.p50)} / ${fmt(l.p95)} / ${fmt(l.p99)} / ${fmt(l.max)}`,
      ceiling: 'p99 ≤ 50',
      ratio: ratio(l.p99, 50),
    });
    const w = r.open.pushLatencyWholeRun;
    out.push({
      figure: 'push latency p50/p99/max ms (open loop, whole run)',
      value: `${fmt(w.p50)} / ${fmt(w.p99)} / ${fmt(w.max)}`,
      ceiling: '',
      ratio: '',
    });
    out.push({
      figure: 'request latency p50/p99 ms (open loop)',
      value: `${fmt(r.open.requestLatency.p50)} / ${fmt(r.open.requestLatency.p99)}`,
      ceiling: '',
      ratio: '',
    });
    out.push({
      figure: 'open loop: errors / lost / duplicates',
      value: faults(r.open),
      ceiling: '0',
      ratio: '',
    });
    out.push(...costRows('open loop', r.open.costs, false));
  }
  const base = r.scale?.[0];
  for (const step of r.scale ?? []) {
    out.push({
      figure: `scale: ${step.listeners} listener(s) sends/s | delivered/s`,
      value: `${fmt(step.result.acceptedPerSec)} | ${fmt(step.result.deliveredPerSec)}`,
      ceiling: fmt(slowest?.perSec),
      ratio: `${ratio(step.result.deliveredPerSec, slowest?.perSec)} (×${fmt(step.result.deliveredPerSec / (base?.result.deliveredPerSec ?? Number.NaN))} of ${base?.listeners})`,
    });
    out.push({
      figure: `scale: ${step.listeners} listener(s) errors / lost / dup`,
      value: faults(step.result),
      ceiling: '0',
      ratio: '',
    });
  }
  if (r.soak) {
    const g = Object.entries(r.soak.growth);
    const worst = g.reduce((m, [, v]) => Math.max(m, Math.abs(v)), 0);
    out.push({
      figure: `soak ${fmt(r.soak.result.shape.durationMs / 1000)} s: RSS growth per process (median last third vs first)`,
      value: g.map(([k, v]) => `${k} ${v >= 0 ? '+' : ''}${fmt(v)}%`).join(', '),
      ceiling: '±10 %',
      ratio: `worst ${fmt(worst)} %`,
    });
    out.push({
      figure: 'soak: V8 heap-in-use growth per process (same windows)',
      value: Object.entries(r.soak.heapGrowth)
        .map(([k, v]) => `${k} ${v >= 0 ? '+' : ''}${fmt(v)}%`)
        .join(', '),
      ceiling: '',
      ratio: '',
    });
    out.push({
      figure: 'soak: errors / lost / duplicates',
      value: faults(r.soak.result),
      ceiling: '0',
      ratio: '',
    });
  }
  return out;
}

export function textTable(list: Row[]): string {
  const head: Row = { figure: 'figure', value: 'value', ceiling: 'ceiling', ratio: 'ratio' };
  const all = [head, ...list];
  const w = (k: keyof Row) => Math.max(...all.map((r) => r[k].length));
  const line = (r: Row) =>
    `${r.figure.padEnd(w('figure'))}  ${r.value.padStart(w('value'))}  ${r.ceiling.padStart(w('ceiling'))}  ${r.ratio.padStart(w('ratio'))}`;
  return [line(head), '-'.repeat(line(head).length), ...list.map(line)].join('\n');
}

function markdown(r: BenchResults, list: Row[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    `# Benchmark ${r.startedAt}`,
    '',
    `${r.machine.cpus} CPUs, Node ${r.machine.node}; flags: \`${JSON.stringify(r.args)}\``,
    '',
    '| figure | value | ceiling | ratio |',
    '|---|---:|---:|---:|',
    ...list.map((x) => `| ${esc(x.figure)} | ${esc(x.value)} | ${esc(x.ceiling)} | ${esc(x.ratio)} |`),
    '',
    '## CPU (cores used while the load ran)',
    '',
  ];
  const phases: PhaseResult[] = [
    ...(r.closed ? [r.closed] : []),
    ...(r.open ? [r.open] : []),
    ...(r.scale ?? []).map((s) => s.result),
    ...(r.soak ? [r.soak.result] : []),
  ];
  const pairs = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  for (const p of phases)
    lines.push(`- ${p.name}: ${pairs(p.cpu)}; CPU stall (PSI some) ${p.cpuStall ?? '?'}`);
  lines.push('', '## CPU ms per accepted message (load and settle)', '');
  for (const p of phases) lines.push(`- ${p.name}: ${pairs(p.cpuMsPerMessage)}`);
  lines.push(
    '',
    '## Cost per delivered message (CPU window: load and settle)',
    '',
    'PostgreSQL: `pg_stat_database` deltas of the bench database (reads included), the end read',
    `${PG_STATS_FLUSH_MS / 1000} s after the window closed, when every backend has published its counters (what the idle`,
    'stack commits meanwhile counts too). AMQP: `messenger_amqp_publishes_total` and',
    '`messenger_amqp_acks_total` (ack frames) summed over every listener and sender; n/a where not exported.',
    '',
    '| phase | delivered | PG commits | PG rollbacks | rows written | AMQP publishes | AMQP ack frames | per message: tx / rows / publishes / acks / CPU ms |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
  );
  for (const p of phases) {
    const c = p.costs;
    if (!c) continue;
    const per = [
      c.pg?.transactionsPerMessage,
      c.pg?.rowsWrittenPerMessage,
      c.amqpPublishesPerMessage,
      c.amqpAcksPerMessage,
      c.cpuMs.total,
    ];
    lines.push(
      `| ${p.name} | ${c.delivered} | ${na(c.pg?.xactCommit)} | ${na(c.pg?.xactRollback)} | ${na(c.pg?.rowsWritten)} | ` +
        `${na(c.amqpPublishes)} | ${na(c.amqpAcks)} | ${per.map(na).join(' / ')} |`,
    );
  }
  if (r.projection) {
    const t = projectionTable(r.projection);
    lines.push('', `## ${PROJECTION_TITLE}`, '', ...t.intro.map((x) => `${x}  `), '');
    lines.push(`| ${t.head.join(' | ')} |`, `|${t.head.map(() => '---').join('|')}|`);
    for (const row of t.cells) lines.push(`| ${row.map(esc).join(' | ')} |`);
    lines.push('', ...t.notes.map((x) => `- ${x}`));
  }
  lines.push('', '## Errors by kind', '');
  for (const p of phases) lines.push(`- ${p.name}: ${JSON.stringify(p.errorKinds)}`);
  if (r.soak) {
    const names = Object.keys(r.soak.growth);
    lines.push('', '## Soak: RSS / V8 heap in use (MiB)', '', `| s | ${names.join(' | ')} |`);
    lines.push(`|---|${names.map(() => '---:').join('|')}|`);
    const mib = (v: number | null | undefined) => fmt((v ?? Number.NaN) / 1024);
    for (const s of r.soak.samples) {
      const cells = names.map((k) => `${mib(s.rssKiB[k])} / ${mib(s.heapUsedKiB?.[k])}`);
      lines.push(`| ${fmt(s.atSeconds)} | ${cells.join(' | ')} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Writes `<dir>/bench-<time>.json` and `.md`; returns their paths. */
export async function writeResults(dir: string, r: BenchResults, list: Row[]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const stamp = r.startedAt.replace(/[:.]/g, '-');
  const json = join(dir, `bench-${stamp}.json`);
  const md = join(dir, `bench-${stamp}.md`);
  await writeFile(json, `${JSON.stringify({ ...r, table: list }, null, 2)}\n`);
  await writeFile(md, markdown(r, list));
  return [json, md];
}
