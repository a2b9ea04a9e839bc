/** Why a push attempt produced no HTTP answer. */
export type ErrorClass =
  | 'timeout'
  | 'connect_timeout'
  | 'connection'
  | 'dns'
  | 'tls'
  /** The address is not http(s) or resolves to a refused range (SSRF guard). */
  | 'blocked_address'
  | 'other';

export type Answer =
  | { kind: 'response'; status: number; retryAfter?: string | undefined }
  | { kind: 'error'; errorClass: ErrorClass };

export type Outcome =
  | { kind: 'delivered' }
  | { kind: 'retry'; afterMs: number }
  | { kind: 'gone' }
  | { kind: 'dead'; reason: 'retry_window_exhausted' | 'blocked_address' };

export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
  /** Counted from when the event was queued; a retry that would land after it is dead instead. */
  windowMs: number;
  /** Full jitter (floored at baseMs); off only for deterministic tests. */
  jitter: boolean;
}

export interface AttemptInfo {
  /** 1 for the first attempt. */
  number: number;
  /** Time since the event was queued, at the end of this attempt. */
  elapsedMs: number;
  /** Clock at the end of this attempt (ms since epoch), for HTTP-date Retry-After values. */
  now: number;
}

/** `Retry-After` as delay-seconds or an HTTP date → ms from `now`; undefined when unusable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return undefined; // not a date either ("-5", "1.5")
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Exponential backoff: attempt n waits in [base, min(max, base·2^(n-1))]. */
function backoffMs(attempt: number, policy: RetryPolicy, random: () => number): number {
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt - 1, 40));
  if (!policy.jitter || cap <= policy.baseMs) return Math.max(cap, policy.baseMs);
  return Math.round(policy.baseMs + random() * (cap - policy.baseMs));
}

/**
 * A delivery whose origin has no free push slot here is looked at again later, without an
 * attempt. Its n-th deferral waits like an n-th retry (backoffMs), so a slow origin's backlog comes
 * back ever more rarely instead of cycling through the shared queue every second ahead of other
 * origins' first attempts; and deferrals count toward the retry window like attempts, so nothing
 * cycles for longer than the window.
 */
export function deferral(
  deferrals: number,
  elapsedMs: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
  /** At least this long (the origin's pace, see OriginGate.deferFor), up to the policy's max. */
  minMs = 0,
): Outcome {
  const afterMs = Math.max(backoffMs(deferrals, policy, random), Math.min(minMs, policy.maxMs));
  if (elapsedMs + afterMs > policy.windowMs) return { kind: 'dead', reason: 'retry_window_exhausted' };
  return { kind: 'retry', afterMs };
}

/**
 * What to do after a push attempt. Pure: the sender applies the decision (inbox, address,
 * retry queue, parking queue) at its edges.
 */
export function outcome(
  answer: Answer,
  attempt: AttemptInfo,
  policy: RetryPolicy,
  random: () => number = Math.random,
): Outcome {
  if (answer.kind === 'response') {
    if (answer.status >= 200 && answer.status < 300) return { kind: 'delivered' };
    if (answer.status === 410) return { kind: 'gone' };
  } else if (answer.errorClass === 'blocked_address') {
    return { kind: 'dead', reason: 'blocked_address' };
  }
  const asked =
    answer.kind === 'response' && (answer.status === 429 || answer.status === 503)
      ? parseRetryAfter(answer.retryAfter, attempt.now)
      : undefined;
  const afterMs = asked ?? backoffMs(attempt.number, policy, random);
  if (attempt.elapsedMs + afterMs > policy.windowMs)
    return { kind: 'dead', reason: 'retry_window_exhausted' };
  return { kind: 'retry', afterMs };
}
