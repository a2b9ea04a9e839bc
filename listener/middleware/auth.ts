import { hashToken } from '../../common/crypto/tokens.ts';
import { touchDevice } from '../../common/db/devices.ts';
import { extendSession, findSession } from '../../common/db/sessions.ts';
import { unauthorized } from '../../common/errors.ts';
import type { Identity } from '../deps.ts';
import type { Ctx } from '../http/route.ts';

/** Activity is written at most this often per device, so reads do not each cost a write. */
const TOUCH_INTERVAL_MS = 60_000;
const BEARER = /^Bearer ([A-Za-z0-9_-]{20,200})$/;

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
  const s = await findSession(deps.db, tokenHash);
  if (!s) return null;
  if (Date.now() - s.last_active_at.getTime() > TOUCH_INTERVAL_MS) {
    await touchDevice(deps.db, s.device_id, client.ip, client.userAgent);
    await extendSession(deps.db, tokenHash, deps.config.SESSION_TTL_DAYS);
  }
  return {
    userId: s.user_id,
    username: s.username,
    deviceId: s.device_id,
    publicKey: s.public_key,
    tokenHash,
  };
}

export async function authenticate(ctx: Ctx): Promise<Identity> {
  const identity = await identify(ctx.deps, bearerToken(ctx.get('authorization')), {
    ip: ctx.state.clientIp,
    userAgent: ctx.get('user-agent') || null,
  });
  if (!identity) throw unauthorized();
  ctx.state.auth = identity;
  ctx.state.log = ctx.state.log.child({ user_id: identity.userId, device_id: identity.deviceId });
  return identity;
}
