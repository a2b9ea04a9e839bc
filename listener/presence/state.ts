import type { Db, Q } from '../../common/db/index.ts';
import type { PresenceChange } from '../../common/queue/messages.ts';
import { contactOf, userArgs } from './contacts.ts';

/** First key of the per-user advisory locks that serialise presence transitions (issue 17). */
const LOCK_CLASS = 17;

export interface PresenceState {
  userId: string;
  username: string;
  online: boolean;
  /** When the current state began; null for a user never seen online. */
  since: string | null;
}

/**
 * The presence of those of `usernames` that are contacts of `viewerId` (others and unknown names
 * are absent: offline, indistinguishable). One query however many names. A user is online as
 * announced (user_presence, which includes the grace after the last stream closed) or while a
 * stream beats whose transition is still being settled.
 */
export async function visiblePresence(
  q: Q,
  viewerId: string,
  usernames: string[],
  expiryMs: number,
): Promise<PresenceState[]> {
  if (!usernames.length) return [];
  const { rows } = await q.raw<{
    rows: { user_id: string; username: string; online: boolean; since: Date | null }[];
  }>(
    `SELECT u.id AS user_id, u.username,
            coalesce(p.online, false) OR live.since IS NOT NULL AS online,
            CASE WHEN p.online OR live.since IS NULL THEN p.since ELSE live.since END AS since
       FROM users u
       LEFT JOIN user_presence p ON p.user_id = u.id
       LEFT JOIN LATERAL (SELECT min(s.connected_at) AS since FROM stream_presence s
                           WHERE s.user_id = u.id AND s.heartbeat_at > now() - make_interval(secs => ?)) live ON true
      WHERE u.username = ANY(?::text[]) AND ${contactOf('u.id')}`,
    [expiryMs / 1000, usernames, ...userArgs(viewerId)],
  );
  return rows.map((r) => ({
    userId: r.user_id,
    username: r.username,
    online: r.online,
    since: r.since?.toISOString() ?? null,
  }));
}

/** Stream rows a settlement deletes first, in its transaction: one that closed, or the user's expired ones. */
export type Removal = { streamId: string } | 'stale';

/** What settling a user's presence did: announce a transition, wait out the grace, or nothing. */
export type Settled =
  | { kind: 'changed'; change: PresenceChange }
  | { kind: 'pending'; inMs: number }
  | { kind: 'none' };

interface Row {
  username: string;
  live: boolean;
  online: boolean | null;
  left_at: Date | null;
  /** ms until left_at + grace (≤ 0: due). */
  due_in_ms: number | null;
}

/**
 * Brings the announced state of one user (user_presence) in line with their stream rows, after
 * any of them was written, or deleting `remove` first. A per-user advisory lock makes
 * delete-read-decide-write atomic, so of concurrent callers (listeners opening, closing,
 * sweeping) exactly one sees each transition and returns it, to be published, and a listener
 * that dies half way leaves the rows as they were for another listener's sweep (a closed stream's
 * row stops beating and expires). The first stream makes the user online at once; the last one
 * closing starts `graceMs` of grace (left_at) and a later call after it announces offline (0:
 * at once, as for expired streams, whose user has been silent for longer than any grace).
 */
export async function settlePresence(
  db: Db,
  userId: string,
  graceMs: number,
  expiryMs: number,
  remove?: Removal,
): Promise<Settled> {
  return db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?, hashtext(?))', [LOCK_CLASS, userId]);
    if (remove === 'stale')
      await trx.raw(
        'DELETE FROM stream_presence WHERE user_id = ? AND heartbeat_at < now() - make_interval(secs => ?)',
        [userId, expiryMs / 1000],
      );
    else if (remove) await trx('stream_presence').where({ stream_id: remove.streamId }).delete();
    const { rows } = await trx.raw<{ rows: Row[] }>(
      `SELECT u.username,
              EXISTS (SELECT 1 FROM stream_presence s
                       WHERE s.user_id = u.id AND s.heartbeat_at > now() - make_interval(secs => ?)) AS live,
              p.online, p.left_at,
              (extract(epoch FROM p.left_at + make_interval(secs => ?) - now()) * 1000)::float8 AS due_in_ms
         FROM users u LEFT JOIN user_presence p ON p.user_id = u.id
        WHERE u.id = ?`,
      [expiryMs / 1000, graceMs / 1000, userId],
    );
    const s = rows[0];
    if (!s) return { kind: 'none' }; // the account is gone
    const set = (patch: string) =>
      trx.raw<{ rows: { since: Date }[] }>(
        `INSERT INTO user_presence AS p (user_id, online, since, left_at) VALUES (?, ?, now(), NULL)
         ON CONFLICT (user_id) DO UPDATE SET ${patch} RETURNING since`,
        [userId, s.live],
      );
    const changed = async (patch: string): Promise<Settled> => {
      const since = (await set(patch)).rows[0]?.since ?? new Date();
      return {
        kind: 'changed',
        change: { user_id: userId, username: s.username, online: s.live, since: since.toISOString() },
      };
    };
    if (s.live) {
      if (s.online === true) {
        if (s.left_at) await set('left_at = NULL'); // back within the grace: nothing to announce
        return { kind: 'none' };
      }
      return changed('online = true, since = now(), left_at = NULL');
    }
    if (s.online !== true) return { kind: 'none' };
    if (graceMs > 0 && !s.left_at) {
      await set('left_at = now()');
      return { kind: 'pending', inMs: graceMs };
    }
    if (graceMs > 0 && (s.due_in_ms ?? 0) > 0) return { kind: 'pending', inMs: s.due_in_ms ?? graceMs };
    return changed('online = false, since = coalesce(p.left_at, now()), left_at = NULL');
  });
}

/** Users whose last stream closed more than `graceMs` ago and are still announced online. */
export async function overdueOffline(q: Q, graceMs: number, limit = 1000): Promise<string[]> {
  const rows: { user_id: string }[] = await q('user_presence')
    .select('user_id')
    .where('left_at', '<=', q.raw('now() - make_interval(secs => ?)', [graceMs / 1000]))
    .limit(limit);
  return rows.map((r) => r.user_id);
}
