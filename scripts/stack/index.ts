import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { checkConfig, type EdgeLimits, nginxArgs, writeNativeConfig } from './nginx.ts';
import { freePort, killPid, logFile, type Proc, spawnProc, stopAll, stopPid, waitFor } from './processes.ts';

const execFileP = promisify(execFile);
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const DEFAULT_LIMITS: EdgeLimits = {
  ratePerSecond: 100,
  burst: 1000,
  authPerMinute: 60,
  authBurst: 30,
  streamConnections: 100,
};

export interface StackOptions {
  /** Where PID files, logs and the rendered nginx config go; one directory per running stack. */
  runDir: string;
  listeners?: number;
  senders?: number;
  httpsHost?: string;
  /** 0 (default) picks a free port. */
  httpsPort?: number;
  /** Listener i listens on listenerBasePort+i; 0 (default) picks free ports. */
  listenerBasePort?: number;
  /** Process k (listeners, then senders) gets METRICS_PORT=metricsBasePort+k; 0 picks free ports. */
  metricsBasePort?: number;
  /** Environment of every listener and sender (DATABASE_URL, AMQP_URL, LOG_LEVEL, …). */
  env?: NodeJS.ProcessEnv;
  /** Extra environment for listener i / sender i only. */
  listenerEnv?: (i: number) => NodeJS.ProcessEnv;
  senderEnv?: (i: number) => NodeJS.ProcessEnv;
  limits?: Partial<EdgeLimits>;
  /** Default `<runDir>/tls/*.pem`, made by scripts/make-cert.sh when absent. */
  certFile?: string;
  keyFile?: string;
  /** Upstream ports nginx balances over besides the listeners it starts (e.g. a dead one). */
  extraUpstreams?: number[];
  nginxBin?: string;
  /** nginx worker processes (default 1; `npm run stack` uses 'auto'). */
  nginxWorkers?: number | 'auto';
  /**
   * How listeners and senders run: `dist` is the compiled JavaScript of `npm run build` (what
   * `npm run stack` runs: no TypeScript loader in production); `source` (default) is the
   * TypeScript through tsx, so tests and the bench always run the code as it is in the tree.
   */
  code?: 'dist' | 'source';
  /** Wait until GET /api/ready answers 200 through nginx (default true). */
  waitReady?: boolean;
  startTimeoutMs?: number;
  log?: (msg: string) => void;
}

interface StackProc {
  index: number;
  name: string;
  pid: number;
  instanceId: string;
  metricsPort: number;
  port?: number;
}

export interface Stack {
  /** `https://host:port` of nginx. */
  url: string;
  runDir: string;
  certFile: string;
  listeners: StackProc[];
  senders: StackProc[];
  nginxPid: number;
  /** An undici dispatcher that trusts the stack's certificate (for tests and tools). */
  dispatcher: Agent;
  /** Kills listener i (SIGKILL by default: a crash; SIGTERM: a graceful stop). */
  killListener(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts listener i again on its port and waits until it answers. */
  restartListener(i: number): Promise<void>;
  killSender(i: number, signal?: NodeJS.Signals): Promise<void>;
  restartSender(i: number): Promise<void>;
  /** Stops everything this stack started (nginx, listeners, senders). */
  stop(): Promise<void>;
}

/** Entry point of a role and the node arguments that run it. */
function entryOf(role: 'listener' | 'sender', code: 'dist' | 'source'): { file: string; args: string[] } {
  if (code === 'dist') {
    const file = `dist/${role}/main.js`;
    return { file, args: [file] };
  }
  const file = `${role}/main.ts`;
  return { file, args: ['--import', 'tsx', file] };
}

async function ports(n: number, base: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(base ? base + i : await freePort());
  return out;
}

/** Makes the self-signed pair when absent (a user-provided pair is kept); true when it made one. */
export async function ensureCert(certFile: string, keyFile: string): Promise<boolean> {
  if (existsSync(certFile) && existsSync(keyFile)) return false;
  await execFileP('bash', [join(ROOT, 'scripts/make-cert.sh'), certFile, keyFile]);
  return true;
}

async function answers(url: string, dispatcher?: Agent): Promise<boolean> {
  const res = await request(url, {
    method: 'GET',
    headersTimeout: 2_000,
    bodyTimeout: 2_000,
    ...(dispatcher ? { dispatcher } : {}),
  });
  await res.body.dump();
  return res.statusCode === 200;
}

/**
 * Senders have no HTTP API: ready once their metrics port answers or their log says so. Only the
 * log written since `fromByte` counts: the log is appended to, and a restarted sender's
 * predecessor already wrote "ready" there.
 */
async function senderReady(metricsPort: number, logPath: string, fromByte: number): Promise<boolean> {
  if (await answers(`http://127.0.0.1:${metricsPort}/metrics`).catch(() => false)) return true;
  const text = (await readFile(logPath).catch(() => Buffer.alloc(0))).subarray(fromByte).toString('utf8');
  return /"msg":"[^"]*\bready\b/.test(text);
}

/**
 * Starts listeners, senders and nginx (rendered from nginx/*.template) as detached processes
 * with PID files under `runDir`; PostgreSQL/RabbitMQ must already run and the database be
 * migrated (scripts/stack.ts does that for `npm run stack`).
 */
export async function startStack(opts: StackOptions): Promise<Stack> {
  const runDir = resolve(opts.runDir);
  const log = opts.log ?? (() => {});
  const nListeners = opts.listeners ?? 2;
  const nSenders = opts.senders ?? 1;
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  const nginxBin = opts.nginxBin ?? 'nginx';
  const host = opts.httpsHost ?? '127.0.0.1';
  const listenerEntry = entryOf('listener', opts.code ?? 'source');
  const senderEntry = entryOf('sender', opts.code ?? 'source');
  await mkdir(runDir, { recursive: true });

  const certFile = resolve(opts.certFile ?? join(runDir, 'tls', 'certificate.pem'));
  const keyFile = resolve(opts.keyFile ?? join(runDir, 'tls', 'private_key.pem'));
  await ensureCert(certFile, keyFile);
  const dispatcher = new Agent({ connect: { ca: readFileSync(certFile), servername: 'localhost' } });

  const listenerPorts = await ports(nListeners, opts.listenerBasePort ?? 0);
  const metricsPorts = await ports(nListeners + nSenders, opts.metricsBasePort ?? 0);
  const baseEnv = opts.env ?? process.env;
  const procs = new Map<string, Proc>();
  /** Size of each process's log when it was (re)launched: readiness is read from there on. */
  const logStart = new Map<string, number>();

  const listeners: StackProc[] = listenerPorts.map((port, index) => ({
    index,
    name: `listener-${index}`,
    pid: 0,
    instanceId: `listener-${index}`,
    metricsPort: metricsPorts[index] ?? 0,
    port,
  }));
  const senders: StackProc[] = Array.from({ length: nSenders }, (_, index) => ({
    index,
    name: `sender-${index}`,
    pid: 0,
    instanceId: `sender-${index}`,
    metricsPort: metricsPorts[nListeners + index] ?? 0,
  }));

  async function launch(
    p: StackProc,
    entry: { file: string; args: string[] },
    extra: NodeJS.ProcessEnv,
  ): Promise<void> {
    const env: NodeJS.ProcessEnv = {
      ...baseEnv,
      INSTANCE_ID: p.instanceId,
      // Listener ports and every metrics port stay on loopback: only nginx is reachable from outside.
      HOST: '127.0.0.1',
      METRICS_PORT: String(p.metricsPort),
      ...(p.port === undefined ? {} : { PORT: String(p.port) }),
      ...extra,
    };
    const logged = await stat(logFile(runDir, p.name)).catch(() => null);
    logStart.set(p.name, logged?.size ?? 0);
    const proc = await spawnProc(runDir, {
      name: p.name,
      command: process.execPath,
      args: entry.args,
      env,
      cwd: ROOT,
      marker: entry.file,
    });
    procs.set(p.name, proc);
    p.pid = proc.pid;
  }

  async function waitListener(p: StackProc): Promise<void> {
    await waitFor(`listener ${p.index}`, () => answers(`http://127.0.0.1:${p.port}/api/health`), {
      timeoutMs,
      runDir,
      ...(procs.get(p.name) ? { proc: procs.get(p.name) as Proc } : {}),
    });
  }

  async function waitSender(p: StackProc): Promise<void> {
    await waitFor(
      `sender ${p.index}`,
      () => senderReady(p.metricsPort, logFile(runDir, p.name), logStart.get(p.name) ?? 0),
      {
        timeoutMs,
        runDir,
        ...(procs.get(p.name) ? { proc: procs.get(p.name) as Proc } : {}),
      },
    );
  }

  const stop = async () => {
    await stopAll(runDir, log);
    await dispatcher.close().catch(() => {});
  };

  try {
    for (const entry of [listenerEntry, ...(nSenders > 0 ? [senderEntry] : [])]) {
      if (!existsSync(join(ROOT, entry.file)))
        throw new Error(`${entry.file} does not exist${opts.code === 'dist' ? ': run npm run build' : ''}`);
    }
    for (const p of listeners) await launch(p, listenerEntry, opts.listenerEnv?.(p.index) ?? {});
    for (const p of senders) await launch(p, senderEntry, opts.senderEnv?.(p.index) ?? {});
    await Promise.all([...listeners.map(waitListener), ...senders.map(waitSender)]);
    log(`listeners on ${listenerPorts.join(', ')}; ${nSenders} sender(s)`);

    const limits = { ...DEFAULT_LIMITS, ...opts.limits };
    // Picked only now: a free port is one of the ephemeral range, and the listeners and senders
    // just opened their own connections, one of which could have taken it as its source port
    // (seen once in a bench run: nginx's bind failed with EADDRINUSE).
    const httpsPort = opts.httpsPort || (await freePort(host === '0.0.0.0' ? '127.0.0.1' : host));
    const mainFile = await writeNativeConfig({
      runDir,
      listen: `${host}:${httpsPort}`,
      upstreamPorts: [...listenerPorts, ...(opts.extraUpstreams ?? [])],
      certFile,
      keyFile,
      limits,
      nginxBin,
      workers: opts.nginxWorkers ?? 1,
    });
    await checkConfig(nginxBin, runDir, mainFile);
    const nginx = await spawnProc(runDir, {
      name: 'nginx',
      command: nginxBin,
      args: nginxArgs(runDir, mainFile),
      env: process.env,
      cwd: runDir,
      marker: mainFile,
    });
    procs.set('nginx', nginx);
    const url = `https://${host === '0.0.0.0' ? '127.0.0.1' : host}:${httpsPort}`;
    const probe = opts.waitReady === false ? '/' : '/api/ready';
    await waitFor(
      'nginx',
      async () => {
        const res = await request(`${url}${probe}`, { dispatcher, headersTimeout: 2_000 });
        await res.body.dump();
        return opts.waitReady === false || res.statusCode === 200;
      },
      { timeoutMs, runDir, proc: nginx },
    );
    await writeFile(
      join(runDir, 'stack.json'),
      `${JSON.stringify({ url, nginx: nginx.pid, listeners, senders }, null, 2)}\n`,
    );

    const restart = async (
      p: StackProc | undefined,
      entry: { file: string; args: string[] },
      extra: NodeJS.ProcessEnv,
    ) => {
      if (!p) throw new Error('no such process');
      await launch(p, entry, extra);
      await (p.port === undefined ? waitSender(p) : waitListener(p));
    };
    const kill = async (p: StackProc | undefined, signal: NodeJS.Signals) => {
      const proc = p && procs.get(p.name);
      if (!p || !proc) throw new Error('no such process');
      if (signal === 'SIGTERM') await stopPid(proc.pid, proc.marker);
      else await killPid(proc.pid, signal);
    };
    return {
      url,
      runDir,
      certFile,
      listeners,
      senders,
      nginxPid: nginx.pid,
      dispatcher,
      killListener: (i, signal = 'SIGKILL') => kill(listeners[i], signal),
      restartListener: (i) => restart(listeners[i], listenerEntry, opts.listenerEnv?.(i) ?? {}),
      killSender: (i, signal = 'SIGKILL') => kill(senders[i], signal),
      restartSender: (i) => restart(senders[i], senderEntry, opts.senderEnv?.(i) ?? {}),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
