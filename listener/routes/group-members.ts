import { z } from 'zod';
import { route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import { addMember, removeGroupMember } from '../use-cases/group-members.ts';

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
      await addMember(ctx.deps, ctx.state, { groupId: params.group_id, username: body.username });
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
      await removeGroupMember(ctx.deps, ctx.state, { groupId: params.group_id, userId: params.user_id });
      ctx.status = 204;
    },
  }),
];
