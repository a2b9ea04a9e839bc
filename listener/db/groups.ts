// The wire shape of a listed group (GET /api/groups) is the row these queries select.
import type { GroupSummary } from '../../common/client/types.ts';
import type { Q, Tx } from '../../common/db/index.ts';

export interface GroupRow {
  id: string;
  name: string;
  is_public: boolean;
  created_at: Date;
}

/** Members in seniority order: the first one is the owner. */
const OWNER = `(SELECT m.user_id FROM group_members m WHERE m.group_id = g.id ORDER BY m.seniority LIMIT 1)`;
const COUNT = `(SELECT count(*)::int FROM group_members m WHERE m.group_id = g.id)`;
const SUMMARY = `g.id AS group_id, g.name, g.is_public, ${OWNER} AS owner_id, ${COUNT} AS member_count`;

export async function insertGroup(trx: Tx, row: Pick<GroupRow, 'id' | 'name' | 'is_public'>): Promise<void> {
  await trx('groups').insert(row);
}

/** Adds members in the given order (earlier = more senior); members already present are kept. */
export async function addMembers(trx: Tx, groupId: string, userIds: string[]): Promise<number> {
  const unique = [...new Set(userIds)];
  if (!unique.length) return 0;
  // One statement; WITH ORDINALITY + ORDER BY hands out seniority in list order.
  // The users are held (FOR SHARE, by id) until commit: an account deleted meanwhile is skipped
  // instead of failing the insert on its foreign key (a 500).
  const { rowCount } = await trx.raw<{ rowCount: number }>(
    `WITH alive AS (SELECT id FROM users WHERE id = ANY(?::uuid[]) ORDER BY id FOR SHARE)
     INSERT INTO group_members (group_id, user_id)
     SELECT ?, u.id FROM unnest(?::uuid[]) WITH ORDINALITY AS u(id, n)
      WHERE u.id IN (SELECT id FROM alive) ORDER BY u.n
     ON CONFLICT (group_id, user_id) DO NOTHING`,
    [unique, groupId, unique],
  );
  return rowCount;
}

export async function removeMember(trx: Tx, groupId: string, userId: string): Promise<boolean> {
  return (await trx('group_members').where({ group_id: groupId, user_id: userId }).delete()) > 0;
}

export async function deleteGroup(trx: Tx, groupId: string): Promise<void> {
  await trx('groups').where({ id: groupId }).delete();
}

/**
 * Locks the group row for the rest of the transaction and returns it with its member ids in
 * seniority order. Membership changes lock `FOR UPDATE`, sends and edits `FOR SHARE`, so a
 * message is always addressed to the membership as it is at commit time: a member removed
 * concurrently either still gets the message (the send committed first) or cannot send it.
 */
export async function lockGroup(
  trx: Tx,
  groupId: string,
  mode: 'update' | 'share',
): Promise<(GroupRow & { members: string[] }) | undefined> {
  const query = trx<GroupRow>('groups').where({ id: groupId });
  const group = await (mode === 'update' ? query.forUpdate() : query.forShare()).first();
  if (!group) return undefined;
  return { ...group, members: await memberIds(trx, groupId) };
}

async function memberIds(q: Q, groupId: string): Promise<string[]> {
  const rows: { user_id: string }[] = await q('group_members')
    .select('user_id')
    .where({ group_id: groupId })
    .orderBy('seniority');
  return rows.map((r) => r.user_id);
}

export async function findGroup(q: Q, groupId: string): Promise<GroupSummary | undefined> {
  const { rows } = await q.raw<{ rows: GroupSummary[] }>(`SELECT ${SUMMARY} FROM groups g WHERE g.id = ?`, [
    groupId,
  ]);
  return rows[0];
}

export async function isMember(q: Q, groupId: string, userId: string): Promise<boolean> {
  return Boolean(await q('group_members').where({ group_id: groupId, user_id: userId }).first());
}

/** Members with usernames, in seniority order. */
export async function membersWithNames(
  q: Q,
  groupId: string,
): Promise<{ user_id: string; username: string }[]> {
  return q('group_members as m')
    .join('users as u', 'u.id', 'm.user_id')
    .select('m.user_id', 'u.username')
    .where('m.group_id', groupId)
    .orderBy('m.seniority');
}

export interface PublicCursor {
  name: string;
  id: string;
}

/** A page of the user's groups by (lower(name), id) after `cursor`, like the public search. */
export async function groupsOf(
  q: Q,
  userId: string,
  opts: { after: PublicCursor | null; limit: number },
): Promise<{ groups: GroupSummary[]; next: PublicCursor | null }> {
  return pageByName(q, 'g.id IN (SELECT group_id FROM group_members WHERE user_id = ?)', [userId], opts);
}

/** One page of the groups matching `where`, by (lower(name), id) after `after` (keyset paging). */
async function pageByName(
  q: Q,
  where: string,
  whereBindings: string[],
  { after, limit }: { after: PublicCursor | null; limit: number },
): Promise<{ groups: GroupSummary[]; next: PublicCursor | null }> {
  const { rows } = await q.raw<{ rows: (GroupSummary & { sort_name: string })[] }>(
    `SELECT ${SUMMARY}, lower(g.name) AS sort_name FROM groups g
      WHERE ${where} ${after ? 'AND (lower(g.name), g.id) > (?, ?::uuid)' : ''}
      ORDER BY lower(g.name), g.id
      LIMIT ?`,
    [...whereBindings, ...(after ? [after.name, after.id] : []), limit + 1],
  );
  const kept = rows.slice(0, limit);
  const last = kept.at(-1);
  return {
    groups: kept.map(({ sort_name: _, ...g }) => g),
    next: rows.length > limit && last ? { name: last.sort_name, id: last.group_id } : null,
  };
}

/** How many groups each of `userIds` is a member of (0 for none). */
export async function groupCounts(q: Q, userIds: string[]): Promise<Map<string, number>> {
  const rows: { user_id: string; n: number }[] = await q('group_members')
    .select('user_id', q.raw('count(*)::int AS n'))
    .whereIn('user_id', userIds)
    .groupBy('user_id');
  const counts = new Map(userIds.map((id) => [id, 0]));
  for (const r of rows) counts.set(r.user_id, r.n);
  return counts;
}

/**
 * Counts one membership change against the group's fixed one-minute window (the caller holds the
 * group row FOR UPDATE) and returns the seconds to wait when it is over `perMinute`, else 0. A
 * refusal rolls back with the caller's transaction, so refused changes do not count.
 */
export async function countMembershipChange(trx: Tx, groupId: string, perMinute: number): Promise<number> {
  const fresh = `changes_window_start > now() - interval '60 seconds'`;
  const { rows } = await trx.raw<{ rows: { n: number; left_ms: number }[] }>(
    `UPDATE groups SET
       changes_in_window = CASE WHEN ${fresh} THEN changes_in_window + 1 ELSE 1 END,
       changes_window_start = CASE WHEN ${fresh} THEN changes_window_start ELSE now() END
     WHERE id = ?
     RETURNING changes_in_window AS n,
       (extract(epoch FROM changes_window_start + interval '60 seconds' - now()) * 1000)::float8 AS left_ms`,
    [groupId],
  );
  const row = rows[0];
  if (!row || row.n <= perMinute) return 0;
  return Math.max(1, Math.ceil(row.left_ms / 1000));
}

/** Public groups whose name contains `q` (case-insensitive), by (lower(name), id) after `cursor`. */
export async function searchPublicGroups(
  q: Q,
  opts: { text: string; after: PublicCursor | null; limit: number },
): Promise<{ groups: GroupSummary[]; next: PublicCursor | null }> {
  const pattern = `%${opts.text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  return pageByName(
    q,
    'g.is_public AND lower(g.name) LIKE ? AND EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id)',
    [pattern],
    opts,
  );
}

/** Groups left without members (their last member's account was deleted). */
export async function deleteEmptyGroups(q: Q): Promise<number> {
  const { rowCount } = await q.raw<{ rowCount: number }>(
    'DELETE FROM groups g WHERE NOT EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id)',
  );
  return rowCount;
}
