import { parseArgs } from 'node:util';
import type { HttpToolChoice } from './ceilings/index.ts';
import { DEFAULT_DEPLOYMENTS, type Deployment, parseDeployments } from './projection.ts';

type Phase = 'raw' | 'closed' | 'open' | 'scale' | 'soak';
const PHASES: Phase[] = ['raw', 'closed', 'open', 'scale', 'soak'];

export interface BenchArgs {
  /** Use an already running stack at this HTTPS origin instead of starting one. */
  url: string | undefined;
  listeners: number;
  senders: number;
  /** Seconds of each closed- and open-loop phase. */
  duration: number;
  /** Seconds of each raw ceiling measurement. */
  ceilingDuration: number;
  concurrency: number;
  /** Users (one device each) that send to each other in a ring. */
  users: number;
  /** Open-loop arrival rate per second; default 50 % of the closed-loop peak. */
  rate: number | undefined;
  scale: number[];
  soak: number;
  /** Seconds to wait for late pushes after a phase before counting the rest as lost. */
  settle: number;
  phases: Phase[];
  sinks: number;
  verifyEvery: number;
  out: string;
  smoke: boolean;
  /** Run listeners and senders with --cpu-prof, profiles written to this directory. */
  cpuProf: string | undefined;
  /** LOG_LEVEL of the listeners and senders (their logs go to the run directory). */
  logLevel: string;
  /** Extra environment for listeners and senders (`--env KEY=VALUE`, repeatable), for tuning runs. */
  env: Record<string, string>;
  /** What measures the raw HTTP ceilings (nginx, sink). */
  ceilingTool: HttpToolChoice;
  /** Deployments of the scale-out projection. */
  project: Deployment[];
  /** A PostgreSQL primary's commit ceiling (transactions/s) for the projection; none by default. */
  pgCommitCeiling: number | undefined;
}

const HELP = `npm run bench -- [flags]
  --url URL            use a running stack (HTTPS origin) instead of starting one
  --listeners N        listeners to start (default 2)
  --senders M          sender workers to start (default 1)
  --duration S         seconds per load phase (default 15)
  --ceiling-duration S seconds per raw ceiling (default 5)
  --concurrency C      closed-loop concurrency (default 64)
  --users N            users with one device each, sending in a ring (default 64)
  --rate R             open-loop sends/s (default 50 % of the closed-loop peak)
  --scale 1,2,4        also run the closed loop with each listener count
  --soak SECONDS       also run an open-loop soak, sampling RSS of every listener/sender
  --settle S           seconds to wait for late pushes before counting them lost (default 20)
  --phases LIST        any of raw,closed,open,scale,soak (default: raw,closed,open + scale/soak if given)
  --sinks N            push sink servers, i.e. push origins (default 8; the sender pools per origin)
  --verify-every N     verify the signature of every N-th push (default 10)
  --out DIR            results directory (default results)
  --cpu-prof DIR       start listeners and senders with --cpu-prof into DIR
  --log-level LEVEL    LOG_LEVEL of listeners and senders (default info)
  --env KEY=VALUE      extra environment for listeners and senders (repeatable), e.g. DATABASE_POOL_MAX=5
  --ceiling-tool T     auto (default: wrk when installed, else node), wrk or node: measures the
                       raw nginx and sink ceilings
  --project LIST       projection deployments, cores listeners/senders/postgres/rabbitmq/nginx,
                       comma-separated (default ${DEFAULT_DEPLOYMENTS.map((d) => d.label).join(',')})
  --pg-commit-ceiling N  also bound the projection's PostgreSQL stage at N transactions/s
  --smoke              tiny, fast run (plumbing check): 2 s phases, few users
`;

export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      listeners: { type: 'string' },
      senders: { type: 'string' },
      duration: { type: 'string' },
      'ceiling-duration': { type: 'string' },
      concurrency: { type: 'string' },
      users: { type: 'string' },
      rate: { type: 'string' },
      scale: { type: 'string' },
      soak: { type: 'string' },
      settle: { type: 'string' },
      phases: { type: 'string' },
      sinks: { type: 'string' },
      'verify-every': { type: 'string' },
      out: { type: 'string' },
      'cpu-prof': { type: 'string' },
      'log-level': { type: 'string' },
      env: { type: 'string', multiple: true },
      'ceiling-tool': { type: 'string' },
      project: { type: 'string' },
      'pg-commit-ceiling': { type: 'string' },
      smoke: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const smoke = values.smoke ?? false;
  const int = (name: string, v: string | undefined, dflt: number, min = 1): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`);
    return n;
  };
  const scale = values.scale?.split(',').map((s) => int('scale', s, 1)) ?? [];
  const soak = int('soak', values.soak, 0, 0);
  let phases: Phase[];
  if (values.phases) {
    phases = values.phases.split(',').map((p) => {
      if (!PHASES.includes(p as Phase)) throw new Error(`unknown phase ${p}; phases are ${PHASES.join(',')}`);
      return p as Phase;
    });
  } else {
    phases = ['raw', 'closed', 'open'];
    if (scale.length) phases.push('scale');
    if (soak) phases.push('soak');
  }
  if (phases.includes('scale') && !scale.length) scale.push(1, 2, 4);
  const ceilingTool = values['ceiling-tool'] ?? 'auto';
  if (ceilingTool !== 'auto' && ceilingTool !== 'wrk' && ceilingTool !== 'node')
    throw new Error('--ceiling-tool must be auto, wrk or node');
  return {
    url: values.url,
    listeners: int('listeners', values.listeners, smoke ? 1 : 2),
    senders: int('senders', values.senders, 1),
    duration: int('duration', values.duration, smoke ? 2 : 15),
    ceilingDuration: int('ceiling-duration', values['ceiling-duration'], smoke ? 1 : 5),
    concurrency: int('concurrency', values.concurrency, smoke ? 4 : 64),
    users: int('users', values.users, smoke ? 4 : 64, 2),
    rate: values.rate === undefined ? undefined : int('rate', values.rate, 1),
    scale,
    soak: phases.includes('soak') ? soak || (smoke ? 4 : 60) : 0,
    settle: int('settle', values.settle, smoke ? 10 : 20),
    phases,
    sinks: int('sinks', values.sinks, 8),
    verifyEvery: int('verify-every', values['verify-every'], smoke ? 1 : 10),
    out: values.out ?? 'results',
    smoke,
    cpuProf: values['cpu-prof'],
    logLevel: values['log-level'] ?? 'info',
    env: Object.fromEntries(
      (values.env ?? []).map((kv) => {
        const i = kv.indexOf('=');
        if (i < 1) throw new Error(`--env wants KEY=VALUE, got ${kv}`);
        return [kv.slice(0, i), kv.slice(i + 1)];
      }),
    ),
    ceilingTool,
    project: values.project ? parseDeployments(values.project) : DEFAULT_DEPLOYMENTS,
    pgCommitCeiling:
      values['pg-commit-ceiling'] === undefined
        ? undefined
        : int('pg-commit-ceiling', values['pg-commit-ceiling'], 1),
  };
}
