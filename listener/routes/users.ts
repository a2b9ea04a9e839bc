import { z } from 'zod';
import { route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import {
  type DirectoryEntry,
  deleteAccount,
  lookUpUser,
  ownProfile,
  type Profile,
  register,
  updateProfile,
} from '../use-cases/users.ts';

const directoryEntry = z
  .object({
    user_id: s.id,
    username: z.string(),
    display_name: z.string().nullable(),
    devices: z.array(z.object({ device_id: s.id, public_key: z.string() })),
  })
  .meta({ id: 'DirectoryEntry' }) satisfies z.ZodType<DirectoryEntry>;

const profile = z
  .object({
    user_id: s.id,
    username: z.string(),
    display_name: z.string().nullable(),
    phone_number: z.string().nullable(),
  })
  .meta({ id: 'Profile' }) satisfies z.ZodType<Profile>;

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
      ctx.body = await register(ctx.deps, {
        username: body.username,
        password: body.password,
        phoneNumber: body.phone_number ?? null,
        displayName: body.display_name ?? null,
      });
      ctx.status = 201;
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
    async handle(ctx, { query }) {
      ctx.body = await lookUpUser(ctx.deps, query.username);
    },
  }),
  route({
    method: 'get',
    path: '/api/users/me',
    tag: 'users',
    summary: 'Own profile',
    auth: true,
    responses: { 200: { description: 'profile', schema: profile } },
    async handle(ctx) {
      ctx.body = await ownProfile(ctx.deps, ctx.state);
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
      ctx.body = await updateProfile(ctx.deps, ctx.state, {
        ...(body.display_name !== undefined && { displayName: body.display_name }),
        ...(body.password !== undefined && { password: body.password }),
        ...(body.current_password !== undefined && { currentPassword: body.current_password }),
      });
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
      await deleteAccount(ctx.deps, ctx.state, { password: body.password });
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
    async handle(ctx, { params }) {
      ctx.body = await lookUpUser(ctx.deps, params.username);
    },
  }),
];
