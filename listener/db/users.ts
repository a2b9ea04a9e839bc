import type { Q, Tx } from '../../common/db/index.ts';

export interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  phone_number: string | null;
  display_name: string | null;
  created_at: Date;
}

export async function insertUser(q: Q, row: Omit<UserRow, 'created_at'>): Promise<void> {
  await q('users').insert(row);
}

export async function findUserByUsername(q: Q, username: string): Promise<UserRow | undefined> {
  return q<UserRow>('users').where({ username }).first();
}

/** Holds the user row until the transaction ends (a concurrent account deletion waits); false when gone. */
/**
 * Holds the user row until the transaction ends; `exclusive` (FOR NO KEY UPDATE) also serializes
 * the callers that count something of the user's before adding to it (devices), so a cap holds
 * under concurrent requests.
 */
export async function lockUser(q: Q, id: string, mode: 'share' | 'exclusive' = 'share'): Promise<boolean> {
  const query = q('users').select('id').where({ id });
  const row = await (mode === 'share' ? query.forShare() : query.forNoKeyUpdate()).first();
  return row !== undefined;
}

/** Holds several user rows (FOR NO KEY UPDATE, in id order so two callers cannot deadlock). */
export async function lockUsers(q: Q, ids: string[]): Promise<void> {
  await q.raw('SELECT id FROM users WHERE id = ANY(?::uuid[]) ORDER BY id FOR NO KEY UPDATE', [ids]);
}

export async function findUserById(q: Q, id: string): Promise<UserRow | undefined> {
  return q<UserRow>('users').where({ id }).first();
}

export async function updateUser(
  q: Q,
  id: string,
  patch: Partial<Pick<UserRow, 'display_name' | 'password_hash'>>,
): Promise<void> {
  if (Object.keys(patch).length) await q('users').where({ id }).update(patch);
}

/**
 * Devices, sessions, inboxes and group memberships go with the user (ON DELETE CASCADE); groups
 * left without members are deleted. The cascade would lock devices and memberships in whatever
 * order it meets them, deadlocking with a send or a group change that locks them the other way;
 * so the locks are taken first, in the order every writer uses: the user's groups (by id), the
 * user, then the devices of the user and of the other members of those groups (by id, as
 * appendEvents, which the caller then runs to tell those members). Returns each group the user
 * was in with the members that remain.
 */
export async function deleteUser(trx: Tx, id: string): Promise<{ groupId: string; members: string[] }[]> {
  const { rows: mine } = await trx.raw<{ rows: { id: string }[] }>(
    `SELECT g.id FROM groups g JOIN group_members m ON m.group_id = g.id
      WHERE m.user_id = ? ORDER BY g.id FOR SHARE OF g`,
    [id],
  );
  // Read after the locks are held (a statement of its own, so its snapshot is not older than
  // a membership change the lock waited for).
  const memberships: { group_id: string; user_id: string }[] = await trx('group_members')
    .select('group_id', 'user_id')
    .whereIn(
      'group_id',
      mine.map((g) => g.id),
    )
    .orderBy('group_id');
  await trx('users').select('id').where({ id }).forUpdate();
  const users = [id, ...new Set(memberships.map((m) => m.user_id))];
  await trx('devices').select('id').whereIn('user_id', users).orderBy('id').forUpdate();
  await trx('users').where({ id }).delete();
  const groups = new Map<string, string[]>();
  for (const m of memberships) {
    const members = groups.get(m.group_id) ?? [];
    if (m.user_id !== id) members.push(m.user_id);
    groups.set(m.group_id, members);
  }
  const empty = [...groups].filter(([, members]) => !members.length).map(([groupId]) => groupId);
  if (empty.length) await trx('groups').whereIn('id', empty).delete();
  return [...groups]
    .filter(([, members]) => members.length)
    .map(([groupId, members]) => ({ groupId, members }));
}

/** The users among `usernames` that exist (lower-cased names), for resolving member lists. */
export async function findUsersByUsernames(
  q: Q,
  usernames: string[],
): Promise<Pick<UserRow, 'id' | 'username'>[]> {
  if (!usernames.length) return [];
  return q<UserRow>('users').select('id', 'username').whereIn('username', usernames);
}
