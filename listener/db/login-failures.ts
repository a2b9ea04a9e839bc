import ipaddr from 'ipaddr.js';
import type { Q } from '../../common/db/index.ts';

/**
 * Failed password checks are counted twice: per (username, place) with a small budget, and per
 * username over all places with a larger one that one place alone cannot reach (config.ts checks
 * it). So an attacker's failures lock out only the attacker's place, while guessing from many
 * places at once still meets a ceiling.
 */
export interface FailureBudget {
  perPlace: { max: number; seconds: number };
  perUser: { max: number; seconds: number };
}

/** The source of the per-username ceiling; no client address looks like it. */
const EVERYWHERE = '*';

/**
 * The place a failure is counted against: the client address, or its /64 for IPv6 (one
 * subscriber gets a whole /64, so single addresses in it are not different places).
 */
export function failureSource(clientIp: string | null): string {
  if (!clientIp || !ipaddr.isValid(clientIp)) return 'unknown';
  const addr = ipaddr.process(clientIp);
  if (addr.kind() === 'ipv4') return addr.toString();
  const parts = (addr as ipaddr.IPv6).parts.slice(0, 4);
  return `${new ipaddr.IPv6([...parts, 0, 0, 0, 0]).toString()}/64`;
}

interface Row {
  source: string;
  failures: number;
  window_start: Date;
}

/** Seconds this username must wait from this place, or 0 when it may try again. */
export async function loginLockedFor(q: Q, username: string, source: string, budget: FailureBudget) {
  const rows: Row[] = await q('login_failures')
    .select('source', 'failures', 'window_start')
    .where({ username })
    .whereIn('source', [source, EVERYWHERE]);
  let wait = 0;
  for (const r of rows) {
    const { max, seconds } = r.source === EVERYWHERE ? budget.perUser : budget.perPlace;
    const left = r.window_start.getTime() + seconds * 1000 - Date.now();
    if (r.failures >= max && left > 0) wait = Math.max(wait, Math.ceil(left / 1000));
  }
  return wait;
}

/** Counts a failure against the place and the username; each window restarts once it has passed. */
export async function recordLoginFailure(
  q: Q,
  username: string,
  source: string,
  budget: FailureBudget,
): Promise<void> {
  const fresh = `login_failures.window_start > now() - make_interval(secs => CASE WHEN login_failures.source = '${EVERYWHERE}' THEN ?::int ELSE ?::int END)`;
  const windows = [budget.perUser.seconds, budget.perPlace.seconds];
  await q.raw(
    `INSERT INTO login_failures (username, source, failures) VALUES (?, ?, 1), (?, '${EVERYWHERE}', 1)
     ON CONFLICT (username, source) DO UPDATE SET
       failures = CASE WHEN ${fresh} THEN login_failures.failures + 1 ELSE 1 END,
       window_start = CASE WHEN ${fresh} THEN login_failures.window_start ELSE now() END`,
    [username, source, username, ...windows, ...windows],
  );
}

/** A right password clears its place's count; the per-username ceiling keeps counting. */
export async function clearLoginFailures(q: Q, username: string, source: string): Promise<void> {
  await q('login_failures').where({ username, source }).delete();
}

export async function deleteStaleLoginFailures(q: Q, budget: FailureBudget): Promise<number> {
  return q('login_failures')
    .where((w) =>
      w
        .where('source', EVERYWHERE)
        .andWhere('window_start', '<', q.raw(`now() - make_interval(secs => ?)`, [budget.perUser.seconds])),
    )
    .orWhere((w) =>
      w
        .whereNot('source', EVERYWHERE)
        .andWhere('window_start', '<', q.raw(`now() - make_interval(secs => ?)`, [budget.perPlace.seconds])),
    )
    .delete();
}

export function failureBudget(config: {
  LOGIN_MAX_FAILURES: number;
  LOGIN_LOCK_SECONDS: number;
  LOGIN_USER_MAX_FAILURES: number;
  LOGIN_USER_WINDOW_SECONDS: number;
}): FailureBudget {
  return {
    perPlace: { max: config.LOGIN_MAX_FAILURES, seconds: config.LOGIN_LOCK_SECONDS },
    perUser: { max: config.LOGIN_USER_MAX_FAILURES, seconds: config.LOGIN_USER_WINDOW_SECONDS },
  };
}
