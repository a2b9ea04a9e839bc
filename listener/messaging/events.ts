import { deviceKeysByUser } from '../../common/db/devices.ts';
import type { Q } from '../../common/db/index.ts';
import type { Event, EventSender, PendingEvent } from '../../common/events.ts';
import type { Identity } from '../deps.ts';

type Body = Omit<Event, 'id' | 'seq'>;

/** The authenticated device as the `from` of the events it causes. */
export function sender(auth: Identity): EventSender {
  return {
    user_id: auth.userId,
    username: auth.username,
    device_id: auth.deviceId,
    public_key: auth.publicKey,
  };
}

/** Every device of these users, optionally without one (the device acting). */
export async function devicesOf(q: Q, userIds: string[], except?: string): Promise<string[]> {
  const byUser = await deviceKeysByUser(q, [...new Set(userIds)]);
  return [...byUser.values()].flat().flatMap((d) => (d.device_id === except ? [] : [d.device_id]));
}

/** The same content-free event for each device. */
export function fanOut(deviceIds: string[], event: Body): PendingEvent[] {
  return deviceIds.map((device_id) => ({ device_id, event }));
}

/** `group.updated`: membership or ownership changed; clients re-read the group. */
export function groupUpdated(auth: Identity, groupId: string): Body {
  return {
    type: 'group.updated',
    message_id: null,
    group_id: groupId,
    sent_at: new Date().toISOString(),
    from: sender(auth),
    nonce: null,
    ciphertext: null,
    file_ids: [],
  };
}
