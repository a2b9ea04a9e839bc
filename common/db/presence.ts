import type { Q } from './index.ts';

export interface OpenStream {
  streamId: string;
  deviceId: string;
  userId: string;
}

/**
 * Records or refreshes open streams of one listener instance. An upsert rather than an UPDATE, so a
 * row removed as stale (e.g. after a long pause of this process) comes back with the next beat.
 */
export async function beatStreams(q: Q, instanceId: string, streams: OpenStream[]): Promise<void> {
  if (!streams.length) return;
  await q.raw(
    `INSERT INTO stream_presence (stream_id, instance_id, device_id, user_id)
     SELECT s.stream_id, ?, s.device_id, s.user_id
       FROM unnest(?::uuid[], ?::uuid[], ?::uuid[]) AS s(stream_id, device_id, user_id)
       -- the device or user may have been deleted meanwhile
      WHERE EXISTS (SELECT 1 FROM devices d WHERE d.id = s.device_id)
     ON CONFLICT (stream_id) DO UPDATE SET heartbeat_at = now()`,
    [
      instanceId,
      streams.map((s) => s.streamId),
      streams.map((s) => s.deviceId),
      streams.map((s) => s.userId),
    ],
  );
}

export async function endStream(q: Q, streamId: string): Promise<void> {
  await q('stream_presence').where({ stream_id: streamId }).delete();
}

/** Rows whose listener stopped beating (killed, partitioned); any listener may run it. */
export async function deleteStaleStreams(q: Q, expiryMs: number): Promise<number> {
  return q('stream_presence')
    .where('heartbeat_at', '<', q.raw('now() - make_interval(secs => ?)', [expiryMs / 1000]))
    .delete();
}

/** Of `usernames`, those with at least one stream beating within `expiryMs`. Unknown names are simply absent. */
export async function onlineUsernames(q: Q, usernames: string[], expiryMs: number): Promise<Set<string>> {
  if (!usernames.length) return new Set();
  const { rows } = await q.raw<{ rows: { username: string }[] }>(
    `SELECT u.username FROM users u
      WHERE u.username = ANY(?::text[])
        AND EXISTS (SELECT 1 FROM stream_presence p
                     WHERE p.user_id = u.id AND p.heartbeat_at > now() - make_interval(secs => ?))`,
    [usernames, expiryMs / 1000],
  );
  return new Set(rows.map((r) => r.username));
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
