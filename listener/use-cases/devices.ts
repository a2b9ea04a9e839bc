import {
  type DeviceRow,
  deleteDevice,
  findDevice,
  listDevicesWithSessions,
  updateDevice,
} from '../db/devices.ts';
import { requeueInbox } from '../db/inbox.ts';
import type { Deps } from '../deps.ts';
import { notFound } from '../errors.ts';
import { withEvents } from '../messaging/append.ts';
import type { Actor } from './caller.ts';

export type DeviceWithSession = DeviceRow & { signed_in: boolean };

export function listDevices(deps: Deps, actor: Actor): Promise<DeviceWithSession[]> {
  return listDevicesWithSessions(deps.db, actor.auth.userId);
}

/** Renames the actor's device or sets/clears its push address (a new one pushes what is queued). */
export async function updateCurrentDevice(
  deps: Deps,
  actor: Actor,
  input: { name?: string | undefined; userAddress?: string | null | undefined },
): Promise<DeviceWithSession> {
  const { deviceId, userId } = actor.auth;
  await withEvents(deps, actor.requestId, async (trx, _append, wrote) => {
    const before = await findDevice(trx, deviceId);
    await updateDevice(trx, deviceId, {
      ...(input.name !== undefined && { name: input.name }),
      ...(input.userAddress !== undefined && { user_address: input.userAddress }),
    });
    // Only a new address pushes what is queued (the same one again would push it all again).
    if (input.userAddress && before && input.userAddress !== before.user_address)
      wrote(await requeueInbox(trx, deviceId, deps.config.REQUEUE_MAX_EVENTS, actor.requestId));
  });
  const row = (await listDevicesWithSessions(deps.db, userId)).find((d) => d.id === deviceId);
  if (!row) throw notFound('no such device');
  return row;
}

/** Removes one of the actor's devices with its session and inbox. */
export async function removeDevice(deps: Deps, actor: Actor, deviceId: string | null): Promise<void> {
  if (!deviceId || !(await deleteDevice(deps.db, actor.auth.userId, deviceId))) {
    throw notFound('no such device');
  }
  await deps.cache.revoke(actor.auth.userId);
}
