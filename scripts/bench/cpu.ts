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

/** The machine's shared services, found by process name (shared with anything else running). */
export function serviceGroups(): Groups {
  return { postgres: byComm(['postgres']), rabbitmq: byComm(['beam.smp']) };
}

function total(pids: number[]): number {
  let s = 0;
  for (const pid of pids) s += cpuSeconds(pid) ?? 0;
  return s;
}

/** A process and its direct children (nginx master + workers). */
export function withChildren(pid: number): number[] {
  return [pid, ...childPids(pid)];
}

/** Starts counting; the returned function gives cores used per group since then. */
export function cpuMeter(groups: () => Groups): () => Record<string, number> {
  const start = performance.now();
  const before = Object.fromEntries(Object.entries(groups()).map(([k, pids]) => [k, total(pids)]));
  return () => {
    const elapsed = (performance.now() - start) / 1000;
    const out: Record<string, number> = {};
    for (const [k, pids] of Object.entries(groups())) {
      out[k] = Math.round(((total(pids) - (before[k] ?? 0)) / elapsed) * 100) / 100;
    }
    return out;
  };
}
