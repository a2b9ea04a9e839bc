import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { hashPassword, verifyPassword } from '../../common/crypto/password.ts';
import { deviceKeysByUser } from '../../common/db/devices.ts';
import { isUniqueViolation } from '../../common/db/index.ts';
import { endOtherSessions } from '../../common/db/sessions.ts';
import {
  deleteUser,
  findUserById,
  findUserByUsername,
  insertUser,
  type UserRow,
  updateUser,
} from '../../common/db/users.ts';
import { badRequest, conflict, forbidden, notFound, unauthorized } from '../../common/errors.ts';
import { type Ctx, route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import { withEvents } from '../messaging/append.ts';
import { fanOut, groupUpdated } from '../messaging/events.ts';
import { withinPasswordBudget } from '../middleware/password-budget.ts';

const directoryEntry = z
  .object({
    user_id: s.id,
    username: z.string(),
    display_name: z.string().nullable(),
    devices: z.array(z.object({ device_id: s.id, public_key: z.string() })),
  })
  .meta({ id: 'DirectoryEntry' });

const profile = z
  .object({
    user_id: s.id,
    username: z.string(),
    display_name: z.string().nullable(),
    phone_number: z.string().nullable(),
  })
  .meta({ id: 'Profile' });

async function directory(ctx: Ctx, username: string) {
  const user = await findUserByUsername(ctx.deps.db, username);
  if (!user) throw notFound('no such user');
  const devices = (await deviceKeysByUser(ctx.deps.db, [user.id])).get(user.id) ?? [];
  ctx.body = { user_id: user.id, username: user.username, display_name: user.display_name, devices };
}

const presentProfile = (u: UserRow) => ({
  user_id: u.id,
  username: u.username,
  display_name: u.display_name,
  phone_number: u.phone_number,
});

async function me(ctx: Ctx) {
  const user = await findUserById(ctx.deps.db, ctx.state.auth.userId);
  if (!user) throw unauthorized();
  return user;
}

/**
 * The password check of PATCH/DELETE /api/users/me. It shares the failure budgets of POST
 * /api/login (per place and per username), so a stolen token cannot brute-force the password here.
 */
async function requirePassword(ctx: Ctx, password: string) {
  const user = await me(ctx);
  const ok = await withinPasswordBudget(
    ctx,
    user.username,
    () => verifyPassword(password, user.password_hash),
    'too many wrong passwords for this user, retry later',
  );
  if (!ok) throw forbidden('wrong password', 'wrong_password');
  return user;
}

export const userRoutes = [
  route({
    method: 'post',
    path: '/api/users',
    tag: 'users',
    summary: 'Register a user',
    auth: false,
    body: z.strictObject({
      username: s.username,
      password: s.password,
      phone_number: s.phoneNumber.optional(),
      display_name: s.displayName.optional(),
    }),
    responses: {
      201: { description: 'created', schema: z.object({ user_id: s.id, username: z.string() }) },
      409: {
        description: '`username_taken` or `phone_number_taken`',
        errors: ['username_taken', 'phone_number_taken'],
      },
    },
    async handle(ctx, { body }) {
      const id = randomUUID();
      const password_hash = await hashPassword(body.password, ctx.deps.config.PASSWORD_HASH_COST);
      try {
        await insertUser(ctx.deps.db, {
          id,
          username: body.username,
          password_hash,
          phone_number: body.phone_number ?? null,
          display_name: body.display_name ?? null,
        });
      } catch (err) {
        if (isUniqueViolation(err, 'users_username_key'))
          throw conflict('username_taken', 'username is taken');
        if (isUniqueViolation(err, 'users_phone_number_key')) {
          throw conflict('phone_number_taken', 'phone number is taken');
        }
        throw err;
      }
      ctx.status = 201;
      ctx.body = { user_id: id, username: body.username };
    },
  }),
  route({
    method: 'get',
    path: '/api/users',
    tag: 'users',
    summary:
      'Look up a user and their device keys by `?username=` (the same answer as `GET /api/users/{username}`, for clients that build query strings)',
    auth: true,
    query: z.strictObject({ username: s.username }),
    responses: {
      200: { description: 'the directory entry', schema: directoryEntry },
      404: { description: 'no such user' },
    },
    handle: (ctx, { query }) => directory(ctx, query.username),
  }),
  route({
    method: 'get',
    path: '/api/users/me',
    tag: 'users',
    summary: 'Own profile',
    auth: true,
    responses: { 200: { description: 'profile', schema: profile } },
    async handle(ctx) {
      ctx.body = presentProfile(await me(ctx));
    },
  }),
  route({
    method: 'patch',
    path: '/api/users/me',
    tag: 'users',
    summary: 'Change display name or password (a new password revokes every other session)',
    auth: true,
    body: z.strictObject({
      display_name: s.displayName.nullable().optional(),
      password: s.password.optional(),
      current_password: z.string().max(256).optional(),
    }),
    responses: {
      200: { description: 'profile', schema: profile },
      403: { description: '`wrong_password`', errors: ['wrong_password'] },
      429: { description: 'too many wrong passwords for this user (shared with login); see Retry-After' },
    },
    async handle(ctx, { body }) {
      let user = await me(ctx);
      let password_hash: string | undefined;
      if (body.password !== undefined) {
        if (body.current_password === undefined) {
          throw badRequest('current_password is required to change the password', [
            { field: 'body.current_password', problem: 'required' },
          ]);
        }
        user = await requirePassword(ctx, body.current_password);
        password_hash = await hashPassword(body.password, ctx.deps.config.PASSWORD_HASH_COST);
      }
      await ctx.deps.db.transaction(async (trx) => {
        await updateUser(trx, user.id, {
          ...(body.display_name !== undefined && { display_name: body.display_name }),
          ...(password_hash && { password_hash }),
        });
        if (password_hash) await endOtherSessions(trx, user.id, ctx.state.auth.deviceId);
      });
      // The other sessions end on every listener before this answers.
      if (password_hash) await ctx.deps.cache.revoke(user.id);
      ctx.body = presentProfile(await me(ctx));
    },
  }),
  route({
    method: 'delete',
    path: '/api/users/me',
    tag: 'users',
    summary:
      'Delete the account: sessions, devices and undelivered inboxes go with it; the other members of its groups get `group.updated`, and a group left empty is deleted',
    auth: true,
    body: z.strictObject({ password: z.string().max(256) }),
    responses: {
      204: { description: 'deleted' },
      403: { description: '`wrong_password`', errors: ['wrong_password'] },
      429: { description: 'too many wrong passwords for this user (shared with login); see Retry-After' },
    },
    async handle(ctx, { body }) {
      const user = await requirePassword(ctx, body.password);
      await withEvents(ctx, async (trx, append) => {
        const groups = await deleteUser(trx, user.id);
        // The remaining members of each group learn that its membership changed, as when one leaves.
        const devices = await deviceKeysByUser(trx, [...new Set(groups.flatMap((g) => g.members))]);
        const events = groups.flatMap((g) =>
          fanOut(
            g.members.flatMap((u) => (devices.get(u) ?? []).map((d) => d.device_id)),
            groupUpdated(ctx.state.auth, g.groupId),
          ),
        );
        await append(events);
      });
      await ctx.deps.cache.revoke(user.id);
      ctx.status = 204;
    },
  }),
  route({
    method: 'get',
    path: '/api/users/:username',
    tag: 'users',
    summary: 'Look up a user and their device keys',
    auth: true,
    params: z.strictObject({ username: s.username }),
    responses: {
      200: { description: 'the directory entry', schema: directoryEntry },
      404: { description: 'no such user' },
    },
    handle: (ctx, { params }) => directory(ctx, params.username),
  }),
];
