import { randomUUID } from 'node:crypto';
import type { GroupSummary } from '../../common/client/types.ts';
import type { Tx } from '../../common/db/index.ts';
import { type DeviceKey, deviceKeysByUser } from '../db/devices.ts';
import {
  addMembers,
  findGroup,
  groupCounts,
  groupsOf,
  insertGroup,
  isMember,
  membersWithNames,
  type PublicCursor,
  searchPublicGroups,
} from '../db/groups.ts';
import { findUsersByUsernames, lockUsers } from '../db/users.ts';
import type { Deps } from '../deps.ts';
import { AppError, conflict, notFound } from '../errors.ts';
import { withEvents } from '../messaging/append.ts';
import { devicesOf, fanOut, groupUpdated } from '../messaging/events.ts';
import type { Actor } from './caller.ts';

export const groupFull = (max: number) => conflict('group_full', `a group has at most ${max} members`);

/**
 * 409 `too_many_groups` when one of `userIds` is already in `max` groups. Their user rows are held
 * (FOR NO KEY UPDATE, in id order) until commit, so concurrent joins cannot pass the cap together.
 */
export async function checkGroupQuota(trx: Tx, userIds: string[], max: number): Promise<void> {
  await lockUsers(trx, userIds);
  const counts = await groupCounts(trx, userIds);
  if ([...counts.values()].some((n) => n >= max))
    throw new AppError(409, 'too_many_groups', `a user may be a member of at most ${max} groups`);
}

/** Creates a group of the actor (its owner and first member) and the named users. */
export async function createGroup(
  deps: Deps,
  actor: Actor,
  input: { name: string; members: string[]; isPublic: boolean },
): Promise<{ group_id: string }> {
  const { auth } = actor;
  const { db, config } = deps;
  const names = [...new Set(input.members)];
  const found = await findUsersByUsernames(db, names);
  const missing = names.filter((n) => !found.some((u) => u.username === n));
  if (missing.length) throw notFound(`no such user: ${missing.join(', ')}`);
  const byName = new Map(found.map((u) => [u.username, u.id]));
  const members = [...new Set([auth.userId, ...names.flatMap((n) => byName.get(n) ?? [])])];
  if (members.length > config.GROUP_MEMBERS_MAX) throw groupFull(config.GROUP_MEMBERS_MAX);
  const id = randomUUID();
  await withEvents(deps, actor.requestId, async (trx, append) => {
    await checkGroupQuota(trx, members, config.GROUPS_PER_USER_MAX);
    await insertGroup(trx, { id, name: input.name, is_public: input.isPublic });
    await addMembers(trx, id, members);
    await append(fanOut(await devicesOf(trx, members), groupUpdated(auth, id)));
  });
  actor.log.info({ group_id: id, members: new Set(members).size }, 'group created');
  return { group_id: id };
}

/** The actor's groups, or public groups whose name contains `text`; by name, a page at a time. */
export function listGroups(
  deps: Deps,
  actor: Actor,
  input: { publicText: string | null; after: PublicCursor | null; limit: number },
): Promise<{ groups: GroupSummary[]; next: PublicCursor | null }> {
  const window = { after: input.after, limit: input.limit };
  return input.publicText !== null
    ? searchPublicGroups(deps.db, { text: input.publicText, ...window })
    : groupsOf(deps.db, actor.auth.userId, window);
}

export interface GroupDetail extends Omit<GroupSummary, 'member_count'> {
  members: { user_id: string; username: string; devices: DeviceKey[] }[];
}

/** A group with its members and their devices: for members, or anyone when it is public. */
export async function getGroup(deps: Deps, actor: Actor, groupId: string | null): Promise<GroupDetail> {
  const { db } = deps;
  const group = groupId === null ? undefined : await findGroup(db, groupId);
  if (!group || (!group.is_public && !(await isMember(db, group.group_id, actor.auth.userId))))
    throw notFound('no such group');
  const members = await membersWithNames(db, group.group_id);
  const devices = await deviceKeysByUser(
    db,
    members.map((m) => m.user_id),
  );
  return {
    group_id: group.group_id,
    name: group.name,
    owner_id: group.owner_id,
    is_public: group.is_public,
    members: members.map((m) => ({ ...m, devices: devices.get(m.user_id) ?? [] })),
  };
}
