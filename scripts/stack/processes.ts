import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A process of the stack: its name is also its PID file (`<runDir>/pids/<name>.pid`) and log. */
export interface Proc {
  name: string;
  pid: number;
  /** Part of /proc/<pid>/cmdline that proves a PID still is this process and not a reused one. */
  marker: string;
  child: ChildProcess | undefined;
}

export interface SpawnSpec {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  marker: string;
}

const pidDir = (runDir: string) => join(runDir, 'pids');
export const logFile = (runDir: string, name: string) => join(runDir, 'logs', `${name}.log`);

/**
 * Starts a detached process (its own process group, so it outlives `npm run stack` and a
 * Ctrl-C in that terminal), output appended to `<runDir>/logs/<name>.log`, PID file written.
 */
export async function spawnProc(runDir: string, spec: SpawnSpec): Promise<Proc> {
  await mkdir(pidDir(runDir), { recursive: true });
  await mkdir(join(runDir, 'logs'), { recursive: true });
  const out = openSync(logFile(runDir, spec.name), 'a');
  const child = spawn(spec.command, spec.args, {
    cwd: spec.cwd,
    env: spec.env,
    detached: true,
    stdio: ['ignore', out, out],
  });
  if (child.pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw new Error(`cannot start ${spec.name}: ${err.message}`);
  }
  child.unref();
  await writeFile(join(pidDir(runDir), `${spec.name}.pid`), `${child.pid}\n${spec.marker}\n`);
  return { name: spec.name, pid: child.pid, marker: spec.marker, child };
}

/** True while `pid` runs and its command line still contains `marker`. */
function isOurs(pid: number, marker: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    return cmdline.includes(marker);
  } catch {
    return false;
  }
}

/** True while `pid` exists and is not a zombie (exited, not yet reaped by its parent). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Sends `sig` and waits until the process is gone (SIGKILL: a crash, as tests need). */
export async function killPid(pid: number, sig: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  signal(pid, sig);
  while (alive(pid)) await sleep(20);
}

/** SIGTERM (graceful), then SIGKILL after `graceMs`; only if the PID still is ours. */
export async function stopPid(pid: number, marker: string, graceMs = 10_000): Promise<boolean> {
  if (!isOurs(pid, marker)) return false;
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive(pid) && isOurs(pid, marker) && Date.now() < deadline) await sleep(50);
  if (alive(pid) && isOurs(pid, marker)) signal(pid, 'SIGKILL');
  while (alive(pid) && isOurs(pid, marker)) await sleep(20);
  return true;
}

/** Names of processes whose PID file under `runDir` still points at a live process of ours. */
export async function runningProcs(runDir: string): Promise<string[]> {
  const dir = pidDir(runDir);
  if (!existsSync(dir)) return [];
  const names: string[] = [];
  for (const f of (await readdir(dir)).filter((n) => n.endsWith('.pid'))) {
    const [pidText, marker = ''] = (await readFile(join(dir, f), 'utf8')).split('\n');
    if (isOurs(Number(pidText), marker) && alive(Number(pidText))) names.push(f.replace(/\.pid$/, ''));
  }
  return names;
}

/** Stops every process with a PID file under `runDir` (what the stack started), newest role first. */
export async function stopAll(runDir: string, log: (msg: string) => void = () => {}): Promise<number> {
  const dir = pidDir(runDir);
  if (!existsSync(dir)) return 0;
  const files = (await readdir(dir)).filter((f) => f.endsWith('.pid'));
  // nginx first (stop taking requests), then listeners, then senders (they finish what is queued).
  const rank = (f: string) => (f.startsWith('nginx') ? 0 : f.startsWith('listener') ? 1 : 2);
  files.sort((a, b) => rank(a) - rank(b));
  let stopped = 0;
  for (const group of [0, 1, 2]) {
    await Promise.all(
      files
        .filter((f) => rank(f) === group)
        .map(async (f) => {
          const [pidText, marker = ''] = (await readFile(join(dir, f), 'utf8')).split('\n');
          const pid = Number(pidText);
          if (Number.isInteger(pid) && pid > 0 && (await stopPid(pid, marker))) {
            stopped++;
            log(`stopped ${f.replace(/\.pid$/, '')} (pid ${pid})`);
          }
          await rm(join(dir, f), { force: true });
        }),
    );
  }
  return stopped;
}

/** A TCP port that was free a moment ago (tests and concurrent runs pick their own). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** A base port such that base..base+n-1 were all free a moment ago (for *_BASE_PORT settings). */
export async function freePortRange(n: number, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      const server = createServer();
      ok = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(base + i, host, () => server.close(() => resolve(true)));
      });
    }
    if (ok) return base;
  }
  throw new Error(`no ${n} consecutive free ports`);
}

/** Last lines of a process's log, for error messages. */
function tail(runDir: string, name: string, lines = 20): string {
  try {
    return readFileSync(logFile(runDir, name), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Polls `probe` until it resolves true; fails early when the process died, and after
 * `timeoutMs` with the end of its log.
 */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  opts: { timeoutMs: number; proc?: Proc; runDir?: string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    const { proc, runDir } = opts;
    if (proc && !alive(proc.pid)) {
      throw new Error(`${what}: ${proc.name} exited\n${runDir ? tail(runDir, proc.name) : ''}`);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: not ready after ${opts.timeoutMs} ms\n${proc && runDir ? tail(runDir, proc.name) : ''}`,
      );
    }
    await sleep(100);
  }
}
