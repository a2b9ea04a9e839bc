import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { hashPassword, verifyPassword } from '../../common/crypto/password.ts';
import { hashToken, newToken } from '../../common/crypto/tokens.ts';
import { countDevices, findDevice, insertDevice, updateDevice } from '../../common/db/devices.ts';
import { requeueInbox } from '../../common/db/inbox.ts';
import { endSession, openSession } from '../../common/db/sessions.ts';
import { findUserByUsername, lockUser } from '../../common/db/users.ts';
import { AppError, conflict, notFound } from '../../common/errors.ts';
import { type Ctx, route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import { withEvents } from '../messaging/append.ts';
import { sessionLifetime } from '../middleware/auth.ts';
import { withinPasswordBudget } from '../middleware/password-budget.ts';

const invalidCredentials = () => new AppError(401, 'invalid_credentials', 'wrong username or password');

/** Verified against when the username is unknown, so both failures cost the same time. */
let decoyHash: Promise<string> | undefined;

async function checkCredentials(ctx: Ctx, username: string, password: string) {
  const { db, config } = ctx.deps;
  let user: Awaited<ReturnType<typeof findUserByUsername>>;
  const ok = await withinPasswordBudget(
    ctx,
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

export const sessionRoutes = [
  route({
    method: 'post',
    path: '/api/login',
    tag: 'devices',
    summary: 'Open a session on a new device, or resume one of your devices with `device_id`',
    auth: false,
    body: z.strictObject({
      username: s.username,
      password: z.string().max(256),
      public_key: s.publicKey,
      device_id: s.ref.optional(),
      device_name: s.deviceName.optional(),
      user_address: s.httpUrl.optional(),
    }),
    responses: {
      200: {
        description: 'session opened',
        schema: z.object({ user_id: s.id, device_id: s.id, token: z.string(), expires_at: s.timestamp }),
      },
      401: {
        description: '`invalid_credentials` (unknown user or wrong password alike)',
        errors: ['invalid_credentials'],
      },
      404: { description: "`device_id` is not one of this user's devices" },
      409: {
        description:
          '`device_key_mismatch`: the device has another public key; `too_many_devices`: a new device would pass `DEVICES_PER_USER_MAX` (resume one with `device_id` or remove one)',
        errors: ['device_key_mismatch', 'too_many_devices'],
      },
      429: { description: 'too many failed logins for this username' },
    },
    async handle(ctx, { body }) {
      const user = await checkCredentials(ctx, body.username, body.password);
      const { config } = ctx.deps;
      const token = newToken();
      const deviceId = body.device_id ?? randomUUID();
      const client = { last_ip: ctx.state.clientIp, user_agent: ctx.get('user-agent').slice(0, 512) || null };
      const expiresAt = await withEvents(ctx, async (trx, _append, wrote) => {
        // The account may be deleted while this login runs: then the credentials no longer hold.
        // A new device locks the user exclusively, so concurrent logins cannot pass the cap together.
        if (!(await lockUser(trx, user.id, body.device_id !== undefined ? 'share' : 'exclusive')))
          throw invalidCredentials();
        if (body.device_id !== undefined) {
          const device = body.device_id === null ? undefined : await findDevice(trx, body.device_id);
          if (!device || device.user_id !== user.id) throw notFound('no such device');
          if (device.public_key !== body.public_key) {
            throw conflict('device_key_mismatch', 'this device was registered with another public key');
          }
          await updateDevice(trx, deviceId, {
            ...(body.device_name && { name: body.device_name }),
            ...(body.user_address && { user_address: body.user_address }),
          });
          // Everything queued while the device was away goes out again now that it is back.
          if (body.user_address ?? device.user_address)
            wrote(await requeueInbox(trx, deviceId, config.REQUEUE_MAX_EVENTS, ctx.state.requestId));
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
            public_key: body.public_key,
            name: body.device_name ?? null,
            user_address: body.user_address ?? null,
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
      await ctx.deps.cache.revoke(user.id);
      ctx.state.log.info({ user_id: user.id, device_id: deviceId, resumed: !!body.device_id }, 'login');
      ctx.body = { user_id: user.id, device_id: deviceId, token, expires_at: expiresAt.toISOString() };
    },
  }),
  route({
    method: 'post',
    path: '/api/logout',
    tag: 'devices',
    summary: 'End this session and stop pushes; the device keeps receiving into its inbox',
    auth: true,
    responses: { 204: { description: 'logged out' } },
    async handle(ctx) {
      const { deviceId } = ctx.state.auth;
      // Device row first, then its session: the order a resume takes them in.
      await ctx.deps.db.transaction(async (trx) => {
        await updateDevice(trx, deviceId, { user_address: null });
        await endSession(trx, deviceId);
      });
      await ctx.deps.cache.revoke(ctx.state.auth.userId);
      ctx.status = 204;
    },
  }),
];
