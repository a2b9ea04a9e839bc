import type { Tx } from '../../common/db/index.ts';
import { addMembers, countMembershipChange, deleteGroup, lockGroup, removeMember } from '../db/groups.ts';
import { findUserByUsername } from '../db/users.ts';
import type { Deps, Identity } from '../deps.ts';
import { forbidden, notFound, rateLimited } from '../errors.ts';
import { type Append, withEvents } from '../messaging/append.ts';
import { devicesOf, fanOut, groupUpdated } from '../messaging/events.ts';
import type { Actor } from './caller.ts';
import { checkGroupQuota, groupFull } from './groups.ts';

/** Tells every device of `users` (members before and after the change) that the group changed. */
async function announce(
  auth: Identity,
  trx: Tx,
  append: Append,
  groupId: string,
  users: string[],
): Promise<void> {
  await append(fanOut(await devicesOf(trx, users), groupUpdated(auth, groupId)));
}

/**
 * Counts a membership change against the group's GROUP_CHANGES_PER_MINUTE: every change sends
 * `group.updated` to every device of every member, so an add/remove loop must not run unbounded.
 */
async function throttle(deps: Deps, trx: Tx, groupId: string): Promise<void> {
  const wait = await countMembershipChange(trx, groupId, deps.config.GROUP_CHANGES_PER_MINUTE);
  if (wait) throw rateLimited(wait, 'too many membership changes in this group, retry later');
}

/** The group locked for a membership change, or 404 for strangers to a private group. */
async function lockVisible(trx: Tx, me: string, groupId: string | null) {
  const group = groupId === null ? undefined : await lockGroup(trx, groupId, 'update');
  if (!group || (!group.is_public && !group.members.includes(me))) throw notFound('no such group');
  return { ...group, owner: group.members[0], isMember: group.members.includes(me) };
}

/** The owner adds anyone; anyone may add themself to a public group. A member already: no change. */
export async function addMember(
  deps: Deps,
  actor: Actor,
  input: { groupId: string | null; username: string },
): Promise<void> {
  const me = actor.auth.userId;
  await withEvents(deps, actor.requestId, async (trx, append) => {
    const group = await lockVisible(trx, me, input.groupId);
    const user = await findUserByUsername(trx, input.username);
    const joiningPublic = group.is_public && user?.id === me;
    if (group.owner !== me && !joiningPublic) throw forbidden('only the group owner adds members');
    if (!user) throw notFound('no such user');
    if (group.members.includes(user.id)) return;
    const { config } = deps;
    if (group.members.length >= config.GROUP_MEMBERS_MAX) throw groupFull(config.GROUP_MEMBERS_MAX);
    await checkGroupQuota(trx, [user.id], config.GROUPS_PER_USER_MAX);
    await throttle(deps, trx, group.id);
    await addMembers(trx, group.id, [user.id]);
    await announce(actor.auth, trx, append, group.id, [...group.members, user.id]);
  });
}

/**
 * The owner removes a member, or a member leaves. When the owner leaves, the oldest remaining
 * member becomes owner; a group left without members is deleted.
 */
export async function removeGroupMember(
  deps: Deps,
  actor: Actor,
  input: { groupId: string | null; userId: string | null },
): Promise<void> {
  const me = actor.auth.userId;
  await withEvents(deps, actor.requestId, async (trx, append) => {
    const group = await lockVisible(trx, me, input.groupId);
    if (input.userId !== me && group.owner !== me) {
      throw group.isMember ? forbidden('only the group owner removes members') : notFound('not a member');
    }
    const target = input.userId;
    if (target === null || !group.members.includes(target)) throw notFound('not a member');
    // Leaving is never held back; the owner removing others counts like an add.
    if (target !== me) await throttle(deps, trx, group.id);
    if (!(await removeMember(trx, group.id, target))) throw notFound('not a member');
    await announce(actor.auth, trx, append, group.id, group.members);
    if (group.members.length === 1) await deleteGroup(trx, group.id);
  });
}
