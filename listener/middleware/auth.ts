import { hashToken } from '../crypto/tokens.ts';
import { touchDevice } from '../db/devices.ts';
import { extendSession, findSession, type SessionLifetime } from '../db/sessions.ts';
import type { Identity } from '../deps.ts';
import { unauthorized } from '../errors.ts';
import type { Ctx } from '../http/route.ts';

/** Activity is written at most this often per device, so reads do not each cost a write. */
const TOUCH_INTERVAL_MS = 60_000;
const BEARER = /^Bearer ([A-Za-z0-9_-]{20,200})$/;

export const sessionLifetime = (config: Ctx['deps']['config']): SessionLifetime => ({
  ttlDays: config.SESSION_TTL_DAYS,
  maxDays: config.SESSION_MAX_DAYS,
});

export function bearerToken(header: string | undefined): string | undefined {
  return header ? BEARER.exec(header)?.[1] : undefined;
}

/** Resolves a bearer token to its session; `null` when missing, unknown or expired. */
export async function identify(
  deps: Ctx['deps'],
  token: string | undefined,
  client: { ip: string | null; userAgent: string | null },
): Promise<Identity | null> {
  if (!token) return null;
  const tokenHash = hashToken(token);
  const key = tokenHash.toString('base64');
  const { cache, db, config } = deps;
  let s = cache.session(key);
  if (!s) {
    const mark = cache.mark();
    const row = await findSession(db, tokenHash);
    if (!row) return null;
    s = {
      identity: {
        userId: row.user_id,
        username: row.username,
        deviceId: row.device_id,
        publicKey: row.public_key,
        tokenHash,
      },
      expiresAt: row.expires_at.getTime(),
      lastActiveAt: row.last_active_at.getTime(),
    };
    cache.putSession(mark, key, s);
  }
  const now = Date.now();
  if (now - s.lastActiveAt > TOUCH_INTERVAL_MS) {
    s.lastActiveAt = now;
    await touchDevice(db, s.identity.deviceId, client.ip, client.userAgent);
    // The extension stops at the absolute lifetime; the cache keeps what the row now says.
    const expiresAt = await extendSession(db, tokenHash, sessionLifetime(config));
    s.expiresAt = expiresAt ? expiresAt.getTime() : 0;
    if (s.expiresAt <= now) return null;
  }
  return s.identity;
}

export async function authenticate(ctx: Ctx): Promise<Identity> {
  const identity = await identify(ctx.deps, bearerToken(ctx.get('authorization')), {
    ip: ctx.state.clientIp,
    userAgent: ctx.get('user-agent') || null,
  });
  if (!identity) throw unauthorized();
  ctx.state.auth = identity;
  ctx.state.logFields.bind({ user_id: identity.userId, device_id: identity.deviceId });
  return identity;
}
