/** Messages between the bench (parent) and its load-generator child process, over IPC. */

/** One prepared request; bodies are serialised (and their envelopes encrypted) ahead of time. */
export interface PreparedRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface LoadTarget {
  /** Origin, e.g. `https://127.0.0.1:8443`. Self-signed certificates are accepted. */
  origin: string;
  /** Requests cycled through: worker/arrival i uses `requests[i % length]`. */
  requests: PreparedRequest[];
  /** Pool connections; keep-alive, no pipelining. */
  connections: number;
  /** Record `message_id` from 2xx JSON answers (sends) so arrivals can be matched. */
  recordMessageIds: boolean;
}

export type LoadShape =
  | { kind: 'closed'; concurrency: number; durationMs: number }
  | { kind: 'open'; ratePerSec: number; durationMs: number; maxInFlight: number };

export interface StartCommand {
  type: 'start';
  target: LoadTarget;
  shape: LoadShape;
}

/** A request that was answered 2xx with a message id: [message_id, start epoch ms]. */
export type Accepted = [messageId: string, startedAt: number];

interface ProgressReport {
  type: 'progress';
  ok: number;
  errors: number;
  inFlight: number;
  accepted: Accepted[];
}

export interface DoneReport {
  type: 'done';
  ok: number;
  errors: number;
  /** Open loop: arrivals that could not start because `maxInFlight` requests were pending. */
  skipped: number;
  /** Status code (or error code) → count, for everything that was not 2xx. */
  errorKinds: Record<string, number>;
  /** Start epoch ms of the first request and end of the last one. */
  startedAt: number;
  endedAt: number;
  /** Client-side latency of 2xx answers, ms, percentiles. */
  latency: { p50: number; p95: number; p99: number; max: number };
  /** Accepted since the last progress report. */
  accepted: Accepted[];
}

export type ChildReport = ProgressReport | DoneReport;

/** Wall-clock time in epoch milliseconds with sub-millisecond resolution, comparable across processes. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
