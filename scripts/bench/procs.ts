import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** Resident set size of a process in KiB from /proc/PID/status, or null once it has gone. */
export function rssKiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** A process's Prometheus exposition text, or null when its metrics port does not answer. */
export async function metricsText(metricsPort: number): Promise<string | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, {
      signal: AbortSignal.timeout(2_000),
    });
    return res.ok ? await res.text() : null;
  } catch {
    return null;
  }
}

/** The sum of a metric's samples over all its label sets, or null when the text has none. */
export function sumSamples(text: string, name: string): number | null {
  let sum: number | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\S+?)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (m?.[1] !== name) continue;
    const v = Number(m[2]);
    if (Number.isFinite(v)) sum = (sum ?? 0) + v;
  }
  return sum;
}

/**
 * V8 heap in use (KiB) from the process's Prometheus endpoint (prom-client's
 * nodejs_heap_size_used_bytes), or null when it does not answer: RSS alone cannot tell a leak
 * from the heap and allocator keeping memory they freed.
 */
export async function heapUsedKiB(metricsPort: number): Promise<number | null> {
  const text = await metricsText(metricsPort);
  const bytes = text === null ? null : sumSamples(text, 'nodejs_heap_size_used_bytes');
  return bytes === null ? null : Math.round(bytes / 1024);
}

/** CPU time (user + system) of a process in seconds, from /proc/PID/stat. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ=100)
  } catch {
    return null;
  }
}

/** Children of a process (direct), from /proc/PID/task/PID/children. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Spawns a process and resolves with it and its first stdout line (e.g. the port it listens on). */
export async function spawnWithFirstLine(
  cmd: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const stdout = child.stdout;
  if (!stdout) throw new Error('no stdout');
  const lines = createInterface({ input: stdout });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop(child);
      reject(new Error(`${cmd} printed nothing within ${timeoutMs} ms`));
    }, timeoutMs);
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve({ child, line });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code}) before it was ready`));
    });
  });
}

/** SIGTERM by PID, SIGKILL after `graceMs`; resolves when the process has exited. */
export async function stop(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
