import { prepared, type Q } from '../../common/db/index.ts';

export interface SessionIdentity {
  user_id: string;
  username: string;
  device_id: string;
  public_key: string;
  expires_at: Date;
  last_active_at: Date;
}

/**
 * How long sessions live: `ttlDays` after their last use (sliding), and never more than `maxDays`
 * after the login that opened them (absolute). `expires_at` always holds the earlier of the two,
 * so every reader (findSession, the listeners' session cache) sees the effective expiry.
 */
export interface SessionLifetime {
  ttlDays: number;
  maxDays: number;
}

/** Replaces the device's session (resuming a device ends its old session). */
export async function openSession(
  q: Q,
  s: { tokenHash: Buffer; deviceId: string; userId: string; lifetime: SessionLifetime },
): Promise<Date> {
  // One statement, so a concurrent login of the same device cannot slip a row in between.
  const [row] = await q('sessions')
    .insert({
      token_hash: s.tokenHash,
      device_id: s.deviceId,
      user_id: s.userId,
      expires_at: q.raw(`now() + make_interval(secs => ?)`, [
        Math.min(s.lifetime.ttlDays, s.lifetime.maxDays) * 86400,
      ]),
    })
    .onConflict('device_id')
    .merge(['token_hash', 'user_id', 'expires_at', 'created_at'])
    .returning<{ expires_at: Date }[]>('expires_at');
  return row?.expires_at ?? new Date();
}

export async function findSession(q: Q, tokenHash: Buffer): Promise<SessionIdentity | undefined> {
  // Every authenticated request runs this: prepared, see `prepared`.
  const { rows } = await prepared<SessionIdentity>(
    q,
    `SELECT s.user_id, u.username, s.device_id, d.public_key, s.expires_at, d.last_active_at
       FROM sessions s JOIN devices d ON d.id = s.device_id JOIN users u ON u.id = s.user_id
      WHERE s.token_hash = ? AND s.expires_at > now()`,
    [tokenHash],
  );
  return rows[0];
}

/**
 * Sliding expiry up to the absolute one: `ttlDays` after now, but never past `maxDays` after the
 * login (`created_at`). Returns the new effective expiry (undefined when the session is gone).
 */
export async function extendSession(
  q: Q,
  tokenHash: Buffer,
  lifetime: SessionLifetime,
): Promise<Date | undefined> {
  const [row] = await q('sessions')
    .where({ token_hash: tokenHash })
    .update({
      expires_at: q.raw(`LEAST(now() + make_interval(secs => ?), created_at + make_interval(secs => ?))`, [
        lifetime.ttlDays * 86400,
        lifetime.maxDays * 86400,
      ]),
    })
    .returning<{ expires_at: Date }[]>('expires_at');
  return row?.expires_at;
}

export async function endSession(q: Q, deviceId: string): Promise<void> {
  await q('sessions').where({ device_id: deviceId }).delete();
}

export async function endOtherSessions(q: Q, userId: string, keepDeviceId: string): Promise<void> {
  await q('sessions').where({ user_id: userId }).whereNot({ device_id: keepDeviceId }).delete();
}

export async function deleteExpiredSessions(q: Q): Promise<number> {
  return q('sessions').where('expires_at', '<=', q.fn.now()).delete();
}
