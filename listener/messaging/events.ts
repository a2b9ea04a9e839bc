import type { Q } from '../../common/db/index.ts';
import type { Event, EventSender, PendingEvent } from '../../common/events.ts';
import { deviceKeysByUser } from '../db/devices.ts';
import type { Identity } from '../deps.ts';

type Body = Omit<Event, 'id' | 'seq'>;

/** The authenticated device as the `from` of the events it causes. */
function sender(auth: Identity): EventSender {
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

/** `message` for one device: the envelope encrypted for it. */
export function messageSent(
  auth: Identity,
  m: { id: string; group_id: string | null; sent_at: string; file_ids: string[] },
  envelope: { nonce: string; ciphertext: string },
): Body {
  return {
    type: 'message',
    message_id: m.id,
    group_id: m.group_id,
    sent_at: m.sent_at,
    from: sender(auth),
    nonce: envelope.nonce,
    ciphertext: envelope.ciphertext,
    file_ids: m.file_ids,
  };
}

/** The message an edit, deletion or receipt is about. */
interface About {
  id: string;
  group_id: string | null;
  sent_at: Date;
}

/** `message.edited` for one device: its new envelope; `sent_at` stays the message's. */
export function messageEdited(
  auth: Identity,
  m: About,
  editedAt: string,
  fileIds: string[],
  envelope: { nonce: string; ciphertext: string },
): Body {
  return {
    type: 'message.edited',
    message_id: m.id,
    group_id: m.group_id,
    sent_at: m.sent_at.toISOString(),
    edited_at: editedAt,
    from: sender(auth),
    nonce: envelope.nonce,
    ciphertext: envelope.ciphertext,
    file_ids: fileIds,
  };
}

/** `message.deleted`: clients drop their copy. */
export function messageDeleted(auth: Identity, m: About): Body {
  return {
    type: 'message.deleted',
    message_id: m.id,
    group_id: m.group_id,
    sent_at: m.sent_at.toISOString(),
    from: sender(auth),
    nonce: null,
    ciphertext: null,
    file_ids: [],
  };
}

/** `receipt` to the sender's devices; its `sent_at` is the receipt's time. */
export function receipt(auth: Identity, m: About, type: 'delivered' | 'read'): Body {
  return {
    type: 'receipt',
    message_id: m.id,
    group_id: m.group_id,
    sent_at: new Date().toISOString(),
    from: sender(auth),
    nonce: null,
    ciphertext: null,
    file_ids: [],
    receipt: type,
  };
}
