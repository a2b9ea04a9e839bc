import { z } from 'zod';
import {
  addMembers,
  countMembershipChange,
  deleteGroup,
  lockGroup,
  removeMember,
} from '../../common/db/groups.ts';
import type { Tx } from '../../common/db/index.ts';
import { findUserByUsername } from '../../common/db/users.ts';
import { forbidden, notFound, rateLimited } from '../../common/errors.ts';
import type { Ctx } from '../http/route.ts';
import { route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import { type Append, withEvents } from '../messaging/append.ts';
import { devicesOf, fanOut, groupUpdated } from '../messaging/events.ts';
import { checkGroupQuota, groupFull } from './groups.ts';

/** Tells every device of `users` (members before and after the change) that the group changed. */
async function announce(ctx: Ctx, trx: Tx, append: Append, groupId: string, users: string[]): Promise<void> {
  await append(fanOut(await devicesOf(trx, users), groupUpdated(ctx.state.auth, groupId)));
}

/**
 * Counts a membership change against the group's GROUP_CHANGES_PER_MINUTE: every change sends
 * `group.updated` to every device of every member, so an add/remove loop must not run unbounded.
 */
async function throttle(ctx: Ctx, trx: Tx, groupId: string): Promise<void> {
  const wait = await countMembershipChange(trx, groupId, ctx.deps.config.GROUP_CHANGES_PER_MINUTE);
  if (wait) throw rateLimited(wait, 'too many membership changes in this group, retry later');
}

/** The group locked for a membership change, or 404 for strangers to a private group. */
async function lockVisible(ctx: Ctx, trx: Tx, groupId: string | null) {
  const group = groupId === null ? undefined : await lockGroup(trx, groupId, 'update');
  const me = ctx.state.auth.userId;
  if (!group || (!group.is_public && !group.members.includes(me))) throw notFound('no such group');
  return { ...group, owner: group.members[0], isMember: group.members.includes(me) };
}

export const groupMemberRoutes = [
  route({
    method: 'post',
    path: '/api/groups/:group_id/members',
    tag: 'groups',
    summary: 'Add a member: the owner adds anyone, anyone may add themself to a public group',
    auth: true,
    params: z.strictObject({ group_id: s.ref }),
    body: z.strictObject({ username: s.username }),
    responses: {
      204: { description: 'is a member now (already was: no change, no event)' },
      403: { description: 'only the owner adds others' },
      404: { description: 'no such group (or not visible to you), or no such user' },
      409: {
        description:
          '`group_full`: the group has `GROUP_MEMBERS_MAX` members; `too_many_groups`: the user is in `GROUPS_PER_USER_MAX` groups',
        errors: ['group_full', 'too_many_groups'],
      },
      429: {
        description:
          '`rate_limited`: `GROUP_CHANGES_PER_MINUTE` membership changes of this group in the last minute; see Retry-After',
      },
    },
    async handle(ctx, { params, body }) {
      const me = ctx.state.auth.userId;
      await withEvents(ctx, async (trx, append) => {
        const group = await lockVisible(ctx, trx, params.group_id);
        const user = await findUserByUsername(trx, body.username);
        const joiningPublic = group.is_public && user?.id === me;
        if (group.owner !== me && !joiningPublic) throw forbidden('only the group owner adds members');
        if (!user) throw notFound('no such user');
        if (group.members.includes(user.id)) return;
        const { config } = ctx.deps;
        if (group.members.length >= config.GROUP_MEMBERS_MAX) throw groupFull(config.GROUP_MEMBERS_MAX);
        await checkGroupQuota(trx, [user.id], config.GROUPS_PER_USER_MAX);
        await throttle(ctx, trx, group.id);
        await addMembers(trx, group.id, [user.id]);
        await announce(ctx, trx, append, group.id, [...group.members, user.id]);
      });
      ctx.status = 204;
    },
  }),
  route({
    method: 'delete',
    path: '/api/groups/:group_id/members/:user_id',
    tag: 'groups',
    summary:
      'Remove a member (owner) or leave (yourself). The owner is the longest-standing member: when the owner leaves, the oldest remaining member becomes owner; a group left without members is deleted. Every member device, the removed one included, gets `group.updated`',
    auth: true,
    params: z.strictObject({ group_id: s.ref, user_id: s.ref }),
    responses: {
      204: { description: 'removed' },
      403: { description: 'only the owner removes others' },
      404: { description: 'no such group (or not visible to you), or not a member' },
      429: {
        description:
          '`rate_limited`: the owner removing others past `GROUP_CHANGES_PER_MINUTE` changes a minute (leaving is never limited); see Retry-After',
      },
    },
    async handle(ctx, { params }) {
      const me = ctx.state.auth.userId;
      await withEvents(ctx, async (trx, append) => {
        const group = await lockVisible(ctx, trx, params.group_id);
        if (params.user_id !== me && group.owner !== me) {
          throw group.isMember ? forbidden('only the group owner removes members') : notFound('not a member');
        }
        const target = params.user_id;
        if (target === null || !group.members.includes(target)) throw notFound('not a member');
        // Leaving is never held back; the owner removing others counts like an add.
        if (target !== me) await throttle(ctx, trx, group.id);
        if (!(await removeMember(trx, group.id, target))) throw notFound('not a member');
        await announce(ctx, trx, append, group.id, group.members);
        if (group.members.length === 1) await deleteGroup(trx, group.id);
      });
      ctx.status = 204;
    },
  }),
];
