import { readdirSync, readFileSync } from 'node:fs';
import { childPids, cpuSeconds } from './procs.ts';

/** Named groups of processes whose CPU time is compared before and after a phase. */
export type Groups = Record<string, number[]>;

function byComm(names: string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      if (names.includes(comm)) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

/**
 * A PostgreSQL process that works for `database`: its client backends (whose process title is
 * `postgres: <cluster>: <user> <database> <host> <state>`), and the server-wide ones (postmaster,
 * WAL writer, checkpointer, autovacuum, …), which serve every database. Client backends of other
 * databases — other test suites or benches on a shared machine — are left out.
 */
function servesDatabase(pid: number, database: string): boolean {
  let title: string;
  try {
    title = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return false;
  }
  if (!title.startsWith('postgres: ')) return true; // the postmaster (its command line is unchanged)
  const words = title.slice('postgres: '.length).split(/\s+/);
  if (words[0]?.endsWith(':')) words.shift(); // cluster_name
  const name = words.slice(0, 2).join(' ');
  if (SERVER_PROCESSES.some((p) => name.startsWith(p))) return true;
  return words[1] === database;
}

const SERVER_PROCESSES = [
  'checkpointer',
  'background writer',
  'walwriter',
  'autovacuum',
  'logical replication',
  'archiver',
  'startup',
  'walsender',
  'walreceiver',
  'stats collector',
  'parallel worker',
];

/**
 * The machine's shared services, found by process name. With `database`, PostgreSQL counts only
 * that database's backends and the server-wide processes; RabbitMQ is one process for every user.
 */
export function serviceGroups(database?: string): Groups {
  const postgres = byComm(['postgres']);
  return {
    postgres: database ? postgres.filter((pid) => servesDatabase(pid, database)) : postgres,
    rabbitmq: byComm(['beam.smp']),
  };
}

function snapshot(pids: number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const pid of pids) {
    const s = cpuSeconds(pid);
    if (s !== null) m.set(pid, s);
  }
  return m;
}

/** CPU seconds a group used since `before`: processes that exited meanwhile are not counted. */
function delta(before: Map<number, number> | undefined, pids: number[]): number {
  let sum = 0;
  for (const [pid, now] of snapshot(pids)) sum += now - (before?.get(pid) ?? 0);
  return sum;
}

/** A process and its direct children (nginx master + workers). */
export function withChildren(pid: number): number[] {
  return [pid, ...childPids(pid)];
}

export interface CpuUse {
  /** CPU seconds per group since the meter started. */
  seconds: Record<string, number>;
  elapsedSeconds: number;
  /** Share of time some runnable task waited for a CPU (Linux PSI), 0..1: how busy the machine was. */
  stall: number | null;
}

function stallMicros(): number | null {
  try {
    const m = /^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Starts counting; the returned function gives CPU seconds per group since then. */
export function cpuMeter(groups: () => Groups): () => CpuUse {
  const start = performance.now();
  const stall0 = stallMicros();
  const before = new Map(Object.entries(groups()).map(([k, pids]) => [k, snapshot(pids)]));
  return () => {
    const elapsedSeconds = (performance.now() - start) / 1000;
    const seconds: Record<string, number> = {};
    for (const [k, pids] of Object.entries(groups())) seconds[k] = delta(before.get(k), pids);
    const stall1 = stallMicros();
    const stall = stall0 === null || stall1 === null ? null : (stall1 - stall0) / 1e6 / elapsedSeconds;
    return { seconds, elapsedSeconds, stall };
  };
}

/** Cores used per group. */
export function cores(u: CpuUse): Record<string, number> {
  return Object.fromEntries(
    Object.entries(u.seconds).map(([k, s]) => [k, Math.round((s / u.elapsedSeconds) * 100) / 100]),
  );
}
