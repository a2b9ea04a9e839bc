import type { Q } from '../../common/db/index.ts';

export interface OpenStream {
  streamId: string;
  deviceId: string;
  userId: string;
}

/**
 * Records or refreshes open streams of one listener instance. An upsert rather than an UPDATE, so a
 * row removed as stale (e.g. after a long pause of this process) comes back with the next beat.
 * Returns the users whose rows were (re)inserted rather than refreshed: their presence may change.
 */
export async function beatStreams(q: Q, instanceId: string, streams: OpenStream[]): Promise<string[]> {
  if (!streams.length) return [];
  const { rows } = await q.raw<{ rows: { user_id: string }[] }>(
    `INSERT INTO stream_presence (stream_id, instance_id, device_id, user_id)
     SELECT s.stream_id, ?, s.device_id, s.user_id
       FROM unnest(?::uuid[], ?::uuid[], ?::uuid[]) AS s(stream_id, device_id, user_id)
       -- the device or user may have been deleted meanwhile
      WHERE EXISTS (SELECT 1 FROM devices d WHERE d.id = s.device_id)
     ON CONFLICT (stream_id) DO UPDATE SET heartbeat_at = now()
     -- xmax is 0 on a row this statement inserted, set on one it updated
     RETURNING user_id, (xmax = 0) AS inserted`,
    [
      instanceId,
      streams.map((s) => s.streamId),
      streams.map((s) => s.deviceId),
      streams.map((s) => s.userId),
    ],
  );
  return [
    ...new Set(
      (rows as { user_id: string; inserted: boolean }[]).filter((r) => r.inserted).map((r) => r.user_id),
    ),
  ];
}

/**
 * Users with rows whose listener stopped beating (killed, partitioned): any listener's sweep may
 * run it; settling each user (listener/presence/state.ts) deletes the rows under that user's lock.
 */
export async function staleStreamUsers(q: Q, expiryMs: number, limit = 1000): Promise<string[]> {
  const rows: { user_id: string }[] = await q('stream_presence')
    .distinct('user_id')
    .where('heartbeat_at', '<', q.raw('now() - make_interval(secs => ?)', [expiryMs / 1000]))
    .limit(limit);
  return rows.map((r) => r.user_id);
}

/**
 * Of these session token hashes (of open streams), the ones whose session still exists and has
 * not expired (hex). An open stream is use of its session: like an HTTP request, it slides the
 * session's expiry to `ttlDays` from now, written at most once a minute per session.
 */
export async function liveTokenHashes(q: Q, tokenHashes: Buffer[], ttlDays: number): Promise<Set<string>> {
  if (!tokenHashes.length) return new Set();
  const ttlSeconds = ttlDays * 86_400;
  const { rows } = await q.raw<{ rows: { token_hash: Buffer }[] }>(
    `WITH live AS (
       SELECT token_hash, expires_at FROM sessions
        WHERE token_hash = ANY(?::bytea[]) AND expires_at > now()),
     extended AS (
       UPDATE sessions s SET expires_at = now() + make_interval(secs => ?)
         FROM live
        WHERE s.token_hash = live.token_hash
          AND live.expires_at < now() + make_interval(secs => ?))
     SELECT token_hash FROM live`,
    [tokenHashes, ttlSeconds, ttlSeconds - 60],
  );
  return new Set(rows.map((r) => r.token_hash.toString('hex')));
}
