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

/** Of these session token hashes, the ones whose session still exists and has not expired (hex). */
export async function liveTokenHashes(q: Q, tokenHashes: Buffer[]): Promise<Set<string>> {
  if (!tokenHashes.length) return new Set();
  const rows: { token_hash: Buffer }[] = await q('sessions')
    .select('token_hash')
    .whereIn('token_hash', tokenHashes)
    .andWhere('expires_at', '>', q.fn.now());
  return new Set(rows.map((r) => r.token_hash.toString('hex')));
}
