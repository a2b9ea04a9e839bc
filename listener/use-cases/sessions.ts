import { randomUUID } from 'node:crypto';
import { hashPassword, verifyPassword } from '../crypto/password.ts';
import { hashToken, newToken } from '../crypto/tokens.ts';
import { countDevices, findDevice, insertDevice, updateDevice } from '../db/devices.ts';
import { requeueInbox } from '../db/inbox.ts';
import { endSession, openSession } from '../db/sessions.ts';
import { findUserByUsername, lockUser } from '../db/users.ts';
import type { Deps } from '../deps.ts';
import { AppError, conflict, notFound } from '../errors.ts';
import { withEvents } from '../messaging/append.ts';
import { sessionLifetime } from '../middleware/auth.ts';
import type { Actor, Caller } from './caller.ts';
import { withinPasswordBudget } from './password-budget.ts';

const invalidCredentials = () => new AppError(401, 'invalid_credentials', 'wrong username or password');

/** Verified against when the username is unknown, so both failures cost the same time. */
let decoyHash: Promise<string> | undefined;

async function checkCredentials(deps: Deps, caller: Caller, username: string, password: string) {
  const { db, config } = deps;
  let user: Awaited<ReturnType<typeof findUserByUsername>>;
  const ok = await withinPasswordBudget(
    deps,
    caller.clientIp,
    username,
    async () => {
      user = await findUserByUsername(db, username);
      decoyHash ??= hashPassword('decoy password', config.PASSWORD_HASH_COST);
      const right = await verifyPassword(password, user?.password_hash ?? (await decoyHash));
      return right && user !== undefined;
    },
    'too many failed logins for this username, retry later',
  );
  if (!ok || !user) throw invalidCredentials();
  return user;
}

export interface LoginInput {
  username: string;
  password: string;
  publicKey: string;
  /** Resume this device (null: an id this server never issued, answered as unknown). */
  deviceId?: string | null | undefined;
  deviceName?: string | undefined;
  userAddress?: string | undefined;
  userAgent: string | null;
}

/** Opens a session on a new device, or resumes one of the user's devices (`deviceId`). */
export async function login(
  deps: Deps,
  caller: Caller,
  input: LoginInput,
): Promise<{ user_id: string; device_id: string; token: string; expires_at: string }> {
  const user = await checkCredentials(deps, caller, input.username, input.password);
  const { config } = deps;
  const token = newToken();
  const deviceId = input.deviceId ?? randomUUID();
  const client = { last_ip: caller.clientIp, user_agent: input.userAgent };
  const expiresAt = await withEvents(deps, caller.requestId, async (trx, _append, wrote) => {
    // The account may be deleted while this login runs: then the credentials no longer hold.
    // A new device locks the user exclusively, so concurrent logins cannot pass the cap together.
    if (!(await lockUser(trx, user.id, input.deviceId !== undefined ? 'share' : 'exclusive')))
      throw invalidCredentials();
    if (input.deviceId !== undefined) {
      const device = input.deviceId === null ? undefined : await findDevice(trx, input.deviceId);
      if (!device || device.user_id !== user.id) throw notFound('no such device');
      if (device.public_key !== input.publicKey) {
        throw conflict('device_key_mismatch', 'this device was registered with another public key');
      }
      await updateDevice(trx, deviceId, {
        ...(input.deviceName && { name: input.deviceName }),
        ...(input.userAddress && { user_address: input.userAddress }),
      });
      // Everything queued while the device was away goes out again now that it is back.
      if (input.userAddress ?? device.user_address)
        wrote(await requeueInbox(trx, deviceId, config.REQUEUE_MAX_EVENTS, caller.requestId));
    } else {
      if ((await countDevices(trx, user.id)) >= config.DEVICES_PER_USER_MAX) {
        throw conflict(
          'too_many_devices',
          `an account has at most ${config.DEVICES_PER_USER_MAX} devices: log in with the device_id of one of yours, or remove one (DELETE /api/devices/{id})`,
        );
      }
      await insertDevice(trx, {
        id: deviceId,
        user_id: user.id,
        public_key: input.publicKey,
        name: input.deviceName ?? null,
        user_address: input.userAddress ?? null,
        ...client,
      });
    }
    return openSession(trx, {
      tokenHash: hashToken(token),
      deviceId,
      userId: user.id,
      lifetime: sessionLifetime(config),
    });
  });
  // A new device changes the user's directory; a resumed one's old token ends: on every listener.
  await deps.cache.revoke(user.id);
  caller.log.info({ user_id: user.id, device_id: deviceId, resumed: !!input.deviceId }, 'login');
  return { user_id: user.id, device_id: deviceId, token, expires_at: expiresAt.toISOString() };
}

/** Ends this device's session and stops its pushes; the device keeps receiving into its inbox. */
export async function logout(deps: Deps, actor: Actor): Promise<void> {
  const { deviceId } = actor.auth;
  // Device row first, then its session: the order a resume takes them in.
  await deps.db.transaction(async (trx) => {
    await updateDevice(trx, deviceId, { user_address: null });
    await endSession(trx, deviceId);
  });
  await deps.cache.revoke(actor.auth.userId);
}
