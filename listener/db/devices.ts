import { prepared, type Q } from '../../common/db/index.ts';

export interface DeviceRow {
  id: string;
  user_id: string;
  public_key: string;
  name: string | null;
  user_address: string | null;
  last_seq: string;
  created_at: Date;
  last_active_at: Date;
  last_ip: string | null;
  user_agent: string | null;
}

export interface DeviceKey {
  device_id: string;
  public_key: string;
}

export async function insertDevice(
  q: Q,
  row: Pick<DeviceRow, 'id' | 'user_id' | 'public_key' | 'name' | 'user_address' | 'last_ip' | 'user_agent'>,
): Promise<void> {
  await q('devices').insert(row);
}

/**
 * The device, locked until the caller's transaction ends: two resumes of one device, or a
 * resume and a delete, then run one after the other instead of colliding on its session.
 */
export async function findDevice(q: Q, id: string): Promise<DeviceRow | undefined> {
  return q<DeviceRow>('devices').where({ id }).forUpdate().first();
}

/** The device list with its session state, for `GET /api/devices`. */
export async function listDevicesWithSessions(
  q: Q,
  userId: string,
): Promise<(DeviceRow & { signed_in: boolean })[]> {
  return q('devices as d')
    .select('d.*', q.raw('(s.device_id IS NOT NULL AND s.expires_at > now()) AS signed_in'))
    .leftJoin('sessions as s', 's.device_id', 'd.id')
    .where('d.user_id', userId)
    .orderBy([{ column: 'd.created_at' }, { column: 'd.id' }]);
}

/** Public directory entries (device id + key) of several users, keyed by user id. */
export async function deviceKeysByUser(q: Q, userIds: string[]): Promise<Map<string, DeviceKey[]>> {
  const rows = await q<{ id: string; user_id: string; public_key: string }>('devices')
    .select('id', 'user_id', 'public_key')
    .whereIn('user_id', userIds)
    .orderBy([{ column: 'created_at' }, { column: 'id' }]);
  const byUser = new Map<string, DeviceKey[]>(userIds.map((id) => [id, []]));
  for (const r of rows) byUser.get(r.user_id)?.push({ device_id: r.id, public_key: r.public_key });
  return byUser;
}

/**
 * A user found by username plus the directory entries of that user and of `alsoUserId` (the
 * sender), in one query: what a direct send needs before it can check device coverage.
 */
export async function deviceKeysByUsername(
  q: Q,
  username: string,
  alsoUserId: string,
): Promise<{ userId: string; byUser: Map<string, DeviceKey[]> } | undefined> {
  const { rows } = await prepared<{
    user_id: string;
    named: boolean;
    device_id: string | null;
    public_key: string | null;
  }>(
    q,
    `SELECT u.id AS user_id, u.username = ? AS named, d.id AS device_id, d.public_key
       FROM users u LEFT JOIN devices d ON d.user_id = u.id
      WHERE u.username = ? OR u.id = ?
      ORDER BY d.created_at, d.id`,
    [username, username, alsoUserId],
  );
  const named = rows.find((r) => r.named);
  if (!named) return undefined;
  const byUser = new Map<string, DeviceKey[]>([
    [named.user_id, []],
    [alsoUserId, []],
  ]);
  for (const r of rows) {
    if (r.device_id && r.public_key)
      byUser.get(r.user_id)?.push({ device_id: r.device_id, public_key: r.public_key });
  }
  return { userId: named.user_id, byUser };
}

export async function updateDevice(
  q: Q,
  id: string,
  patch: Partial<Pick<DeviceRow, 'name' | 'user_address' | 'public_key'>>,
): Promise<void> {
  if (Object.keys(patch).length) await q('devices').where({ id }).update(patch);
}

/** Written at most once a minute per device so authenticated reads stay reads. */
export async function touchDevice(
  q: Q,
  id: string,
  ip: string | null,
  userAgent: string | null,
): Promise<void> {
  await q('devices')
    .where({ id })
    .update({ last_active_at: q.fn.now(), last_ip: ip, user_agent: userAgent?.slice(0, 512) ?? null });
}

export async function countDevices(q: Q, userId: string): Promise<number> {
  const row = await q('devices').where({ user_id: userId }).count<{ n: string }[]>({ n: '*' }).first();
  return Number(row?.n ?? 0);
}

/**
 * Deletes up to `limit` devices unseen (no authenticated request or stream) for `days`, with
 * their sessions and inboxes (ON DELETE CASCADE); returns how many, and their users. Several
 * listeners may run it at once: SKIP LOCKED hands them disjoint rows.
 */
export async function deleteInactiveDevices(
  q: Q,
  days: number,
  limit = 1000,
): Promise<{ deleted: number; users: string[] }> {
  const { rows } = await q.raw<{ rows: { user_id: string }[] }>(
    `DELETE FROM devices WHERE id IN (
       SELECT id FROM devices WHERE last_active_at < now() - make_interval(secs => ?)
        ORDER BY last_active_at LIMIT ? FOR UPDATE SKIP LOCKED)
     RETURNING user_id`,
    [days * 86400, limit],
  );
  return { deleted: rows.length, users: [...new Set(rows.map((r) => r.user_id))] };
}

export async function deleteDevice(q: Q, userId: string, id: string): Promise<boolean> {
  return (await q('devices').where({ id, user_id: userId }).delete()) > 0;
}
