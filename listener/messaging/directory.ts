import type { Db } from '../../common/db/index.ts';
import type { AuthCache } from '../auth-cache.ts';
import { type DeviceKey, deviceKeysByUsername } from '../db/devices.ts';

/**
 * What a direct send checks its envelopes against: the recipient's id and the device directories
 * of the recipient and the sender, from this listener's cache when it holds them (see AuthCache
 * for why that is safe), else in one query.
 */
export async function directDirectory(
  db: Db,
  cache: AuthCache,
  username: string,
  senderUserId: string,
): Promise<{ userId: string; byUser: Map<string, DeviceKey[]> } | undefined> {
  const userId = cache.userId(username);
  const theirs = userId && cache.devicesOf(userId);
  const mine = cache.devicesOf(senderUserId);
  if (userId && theirs && mine) {
    return {
      userId,
      byUser: new Map([
        [userId, theirs],
        [senderUserId, mine],
      ]),
    };
  }
  const mark = cache.mark();
  const found = await deviceKeysByUsername(db, username, senderUserId);
  if (!found) return undefined;
  cache.putUser(mark, username, found.userId);
  for (const [id, keys] of found.byUser) cache.putDevices(mark, id, keys);
  return found;
}
