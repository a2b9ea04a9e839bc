import type { PhaseResult } from './phase.ts';
import { round } from './stats.ts';

/**
 * The scale-out projection: messages/s of deployments that give each role its own cores, computed
 * from one phase's measured CPU ms per delivered message per role. A projection, not a
 * measurement: it assumes each role scales linearly with its cores and that the per-message cost
 * stays what this machine measured.
 */

const ROLES = ['listeners', 'senders', 'postgres', 'rabbitmq', 'nginx'] as const;
type Role = (typeof ROLES)[number];

/** Cores per role. */
export interface Deployment extends Record<Role, number> {
  label: string;
}

/** `k/m/p/r/n`: listener, sender, PostgreSQL, RabbitMQ and nginx cores (n defaults to 1). */
function parseDeployment(text: string): Deployment {
  const n = text.split('/').map(Number);
  if ((n.length !== 4 && n.length !== 5) || n.some((x) => !Number.isFinite(x) || x <= 0))
    throw new Error(`a deployment is listeners/senders/postgres/rabbitmq[/nginx] cores, got ${text}`);
  const [listeners = 1, senders = 1, postgres = 1, rabbitmq = 1, nginx = 1] = n;
  return {
    label: [listeners, senders, postgres, rabbitmq, nginx].join('/'),
    listeners,
    senders,
    postgres,
    rabbitmq,
    nginx,
  };
}

export function parseDeployments(text: string): Deployment[] {
  return text.split(',').map(parseDeployment);
}

/** Close to this machine (a sanity check against the measurement), then two larger clusters. */
export const DEFAULT_DEPLOYMENTS: Deployment[] = parseDeployments('2/1/2/1/1,8/4/16/4/2,32/16/32/8/8');

interface ProjectionRow {
  deployment: Deployment;
  /** Messages/s each role's cores allow (cores × 1000 ÷ its CPU ms per message). */
  allows: Record<Role, number>;
  /** PostgreSQL's commit ceiling ÷ transactions per message, when a ceiling was given. */
  pgCommitBound: number | null;
  projected: number;
  bottleneck: string;
  /** Transactions/s the primary would commit at the projected rate. */
  pgTransactionsPerSec: number | null;
  /** Why one more listener core does or does not help. */
  nextListener: string;
  /** The cores per role twice the projected rate would need, for the roles that lack them. */
  twice: string;
}

export interface Projection {
  /** The phase whose costs the projection uses. */
  basis: string;
  cpuMsPerMessage: Record<Role | 'bench', number>;
  pgTransactionsPerMessage: number | null;
  /** Everything (the bench's load generator and sinks too) sharing this machine's cores, against what the phase measured. */
  thisMachine: { cores: number; projected: number; measured: number; cpuStall: number | null };
  rows: ProjectionRow[];
  /** Above this rate one `deliveries` queue (one leader process, one core) may limit RabbitMQ first. */
  singleQueueBound: number;
  pgCommitCeiling: number | null;
}

const rate = (cores: number, ms: number) => (ms > 0 ? (cores * 1000) / ms : Number.POSITIVE_INFINITY);

export function project(
  phase: PhaseResult,
  deployments: Deployment[],
  cores: number,
  pgCommitCeiling: number | undefined,
): Projection | undefined {
  const c = phase.costs;
  if (!c || c.delivered === 0) return undefined;
  const ms = Object.fromEntries([...ROLES, 'bench'].map((k) => [k, c.cpuMs[k] ?? 0])) as Record<
    Role | 'bench',
    number
  >;
  const tx = c.pg?.transactionsPerMessage ?? null;
  const all = Object.values(ms).reduce((a, b) => a + b, 0);
  const rows = deployments.map((d): ProjectionRow => {
    const allows = Object.fromEntries(ROLES.map((r) => [r, rate(d[r], ms[r])])) as Record<Role, number>;
    const pgCommitBound = pgCommitCeiling && tx ? pgCommitCeiling / tx : null;
    const stages: [string, number][] = ROLES.map((r) => [r, allows[r]]);
    if (pgCommitBound !== null) stages.push(['postgres commits', pgCommitBound]);
    stages.sort((a, b) => a[1] - b[1]);
    const [bottleneck, projected] = stages[0] as [string, number];
    const next = stages[1];
    const perListenerCore = rate(1, ms.listeners);
    const nextListener =
      bottleneck === 'listeners'
        ? `listeners limit: each further listener core adds ≈${fmt(perListenerCore)}/s, until ${next?.[0]} at ${fmt(next?.[1])}/s`
        : `another listener adds nothing: ${bottleneck} is the limit` +
          (bottleneck.startsWith('postgres')
            ? ' (one primary: more cores, or fewer transactions and rows per message)'
            : ` (+1 ${bottleneck} core ≈ +${fmt(rate(1, ms[bottleneck as Role] ?? 0))}/s)`);
    return {
      deployment: d,
      allows,
      pgCommitBound,
      projected,
      bottleneck,
      pgTransactionsPerSec: tx === null ? null : projected * tx,
      nextListener,
      twice: twiceNeeds(d, ms, projected, pgCommitBound !== null),
    };
  });
  return {
    basis: phase.name,
    cpuMsPerMessage: ms,
    pgTransactionsPerMessage: tx,
    thisMachine: {
      cores,
      projected: rate(cores, all),
      measured: phase.deliveredPerSec,
      cpuStall: phase.cpuStall,
    },
    rows,
    singleQueueBound: rate(1, ms.rabbitmq),
    pgCommitCeiling: pgCommitCeiling ?? null,
  };
}

/** What doubling the projected rate would take, in cores per role (from the same per-message costs). */
function twiceNeeds(
  d: Deployment,
  ms: Record<Role, number>,
  projected: number,
  commitBound: boolean,
): string {
  if (!Number.isFinite(projected)) return '';
  const target = projected * 2;
  const more = ROLES.flatMap((r) => {
    const need = Math.ceil((target * ms[r]) / 1000);
    return need > d[r] ? [`${r} ${d[r]}→${need}`] : [];
  });
  const commits = commitBound ? ' and a primary that commits twice as many transactions' : '';
  return `2× (${fmt(target)}/s) needs cores: ${more.join(', ') || 'none more'}${commits}`;
}

function fmt(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? '∞' : String(round(n));
}

export const PROJECTION_TITLE =
  'scale-out projection (computed from the measured per-message costs, not measured)';

/** The projection as a header, one table (cells) and notes: shared by the text and Markdown reports. */
export function projectionTable(p: Projection): {
  intro: string[];
  head: string[];
  cells: string[][];
  notes: string[];
} {
  const ms = p.cpuMsPerMessage;
  const intro = [
    `basis: the ${p.basis} phase, CPU ms per delivered message: ${ROLES.map((r) => `${r} ${fmt(ms[r])}`).join(', ')}` +
      `; PostgreSQL ${p.pgTransactionsPerMessage ?? 'n/a'} transactions per message`,
    `sanity check: this machine, every role and the bench's own load generator and sinks (${fmt(ms.bench)} ms) on ` +
      `${p.thisMachine.cores} shared cores → ${fmt(p.thisMachine.projected)}/s projected, ${fmt(p.thisMachine.measured)}/s measured` +
      ` (assumes the cores never idle and run nothing else; CPU stall ${p.thisMachine.cpuStall ?? '?'})`,
  ];
  const head = [
    'cores L/S/P/R/N',
    ...ROLES.map((r) => `${r}/s`),
    ...(p.pgCommitCeiling ? ['pg commits/s'] : []),
    'projected msg/s',
    'saturates first',
    'PG tx/s needed',
  ];
  const queue = (r: ProjectionRow) => (r.projected > p.singleQueueBound ? ' †' : '');
  const cells = p.rows.map((r) => [
    r.deployment.label,
    ...ROLES.map((role) => fmt(r.allows[role])),
    ...(p.pgCommitCeiling ? [fmt(r.pgCommitBound ?? undefined)] : []),
    `${fmt(r.projected)}${queue(r)}`,
    r.bottleneck,
    r.pgTransactionsPerSec === null ? 'n/a' : fmt(r.pgTransactionsPerSec),
  ]);
  const notes = [
    ...p.rows.map((r) => `${r.deployment.label}: ${r.nextListener}; ${r.twice}`),
    'cores: L listeners, S senders, P one PostgreSQL primary, R RabbitMQ (node or cluster), N nginx (own column); each role allows cores × 1000 ÷ its CPU ms per message.',
    `† above ≈${fmt(p.singleQueueBound)}/s (one core's worth of the broker's whole per-message CPU, a lower bound) the single deliveries queue — one leader process on one core — may limit before RabbitMQ's other cores: shard it (AMQP_DELIVERY_SHARDS).`,
    p.pgCommitCeiling
      ? `PostgreSQL is also bounded by the given commit ceiling, ${fmt(p.pgCommitCeiling)} transactions/s ÷ transactions per message.`
      : 'No commit ceiling is assumed for the primary (--pg-commit-ceiling N adds one); "PG tx/s needed" says what it must sustain. Linear scaling of one primary past ~16 cores is optimistic (WAL insertion, locks).',
  ];
  return { intro, head, cells, notes };
}

export function projectionText(p: Projection): string {
  const { intro, head, cells, notes } = projectionTable(p);
  const all = [head, ...cells];
  const widths = head.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) =>
        i === 0 || head[i] === 'saturates first'
          ? cell.padEnd(widths[i] ?? 0)
          : cell.padStart(widths[i] ?? 0),
      )
      .join('  ');
  return [
    PROJECTION_TITLE,
    ...intro,
    line(head),
    '-'.repeat(line(head).length),
    ...cells.map(line),
    ...notes,
  ].join('\n');
}
