import { z } from 'zod';
import type { GroupSummary } from '../../common/client/types.ts';
import { ENVELOPE_LIMIT } from '../../common/config.ts';
import type { PublicCursor } from '../db/groups.ts';
import { route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import { createGroup, type GroupDetail, getGroup, listGroups } from '../use-cases/groups.ts';

/**
 * Members a creation request may name at most, whatever GROUP_MEMBERS_MAX says: a bound on the
 * input only (a group of more members could not be sent to anyway), the configured cap is 409.
 */
const MAX_NAMED_MEMBERS = ENVELOPE_LIMIT;

const groupParams = z.strictObject({ group_id: s.ref });

const summary = z
  .object({
    group_id: s.id,
    name: z.string(),
    owner_id: s.id.nullable(),
    is_public: z.boolean(),
    member_count: z.number().int(),
  })
  .meta({ id: 'GroupSummary' }) satisfies z.ZodType<GroupSummary>;

const detail = z
  .object({
    group_id: s.id,
    name: z.string(),
    owner_id: s.id.nullable(),
    is_public: z.boolean(),
    members: z.array(
      z.object({
        user_id: s.id,
        username: z.string(),
        devices: z.array(z.object({ device_id: s.id, public_key: z.string() })),
      }),
    ),
  })
  .meta({ id: 'Group' }) satisfies z.ZodType<GroupDetail>;

/** Opaque page cursor: base64url of the last group's sort key. */
const cursor = z
  .string()
  .max(512)
  .transform((v, ctx): PublicCursor => {
    try {
      const parsed = JSON.parse(Buffer.from(v, 'base64url').toString());
      const ok = z.object({ n: z.string().max(256), i: z.uuid() }).parse(parsed);
      return { name: ok.n, id: ok.i };
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not a cursor returned by this endpoint' });
      return z.NEVER;
    }
  });
const encodeCursor = (c: PublicCursor) =>
  Buffer.from(JSON.stringify({ n: c.name, i: c.id })).toString('base64url');

const listQuery = z
  .strictObject({
    public: z.enum(['true', 'false']).optional(),
    q: z.string().max(64).optional(),
    limit: z
      .string()
      .regex(/^\d{1,4}$/, 'an integer 1..100')
      .transform(Number)
      .pipe(z.number().int().min(1).max(100))
      .optional(),
    cursor: cursor.optional(),
  })
  .refine((q) => q.public === 'true' || q.q === undefined, {
    message: '`q` searches public groups: add public=true',
    path: ['public'],
  });

export const groupRoutes = [
  route({
    method: 'post',
    path: '/api/groups',
    tag: 'groups',
    summary: 'Create a group; the creator is its owner and first member',
    auth: true,
    body: z.strictObject({
      name: z.string().trim().min(1).max(64),
      members: z.array(s.username).max(MAX_NAMED_MEMBERS),
      is_public: z.boolean().optional(),
    }),
    responses: {
      201: {
        description: 'created; every member device gets `group.updated`',
        schema: z.object({ group_id: s.id }),
      },
      404: { description: 'a member username does not exist' },
      409: {
        description:
          '`group_full`: more members than `GROUP_MEMBERS_MAX` (creator included); `too_many_groups`: you or a named member are already in `GROUPS_PER_USER_MAX` groups',
        errors: ['group_full', 'too_many_groups'],
      },
    },
    async handle(ctx, { body }) {
      ctx.body = await createGroup(ctx.deps, ctx.state, {
        name: body.name,
        members: body.members,
        isPublic: body.is_public ?? false,
      });
      ctx.status = 201;
    },
  }),
  route({
    method: 'get',
    path: '/api/groups',
    tag: 'groups',
    summary:
      'Your groups, or with `public=true` public groups whose name contains `q`; both by name, paged by `limit` (1..100, default 50) and the opaque `cursor` of the previous page',
    auth: true,
    query: listQuery,
    responses: {
      200: {
        description: '`next_cursor` is null on the last page',
        schema: z.object({ groups: z.array(summary), next_cursor: z.string().nullable() }),
      },
    },
    async handle(ctx, { query }) {
      const page = await listGroups(ctx.deps, ctx.state, {
        publicText: query.public === 'true' ? (query.q ?? '') : null,
        after: query.cursor ?? null,
        limit: query.limit ?? 50,
      });
      ctx.body = { groups: page.groups, next_cursor: page.next && encodeCursor(page.next) };
    },
  }),
  route({
    method: 'get',
    path: '/api/groups/:group_id',
    tag: 'groups',
    summary: 'A group with its members and their devices (members only, anyone for public groups)',
    auth: true,
    params: groupParams,
    responses: { 200: { description: 'the group', schema: detail }, 404: { description: 'no such group' } },
    async handle(ctx, { params }) {
      ctx.body = await getGroup(ctx.deps, ctx.state, params.group_id);
    },
  }),
];
