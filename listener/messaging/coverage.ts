import type { Q } from '../../common/db/index.ts';
import { type DeviceKey, deviceKeysByUser } from '../db/devices.ts';
import { badRequest, conflict } from '../errors.ts';

export interface Envelope {
  device_id: string;
  nonce: string;
  ciphertext: string;
}

/**
 * The devices a message must be encrypted for: every device of every recipient user plus the
 * sender's other devices, never the sending device. Envelopes must match that set exactly,
 * otherwise 409 `device_mismatch` tells the client which devices to add or drop.
 */
export async function checkCoverage(
  q: Q,
  recipientUserIds: string[],
  sender: { userId: string; deviceId: string },
  envelopes: Envelope[],
): Promise<void> {
  const seen = uniqueDevices(envelopes);
  const users = [...new Set([...recipientUserIds, sender.userId])];
  checkCoverageOf(await deviceKeysByUser(q, users), sender, envelopes, seen);
}

/**
 * The same check on directory entries already loaded (keyed by user id, recipients and sender),
 * e.g. by deviceKeysByUsername together with the recipient itself.
 */
export function checkCoverageOf(
  byUser: Map<string, DeviceKey[]>,
  sender: { userId: string; deviceId: string },
  envelopes: Envelope[],
  seen = uniqueDevices(envelopes),
): void {
  const expected = new Map<string, { user_id: string; device_id: string; public_key: string }>();
  for (const [userId, devices] of byUser) {
    for (const d of devices)
      if (d.device_id !== sender.deviceId) expected.set(d.device_id, { user_id: userId, ...d });
  }
  const missing = [...expected.values()].filter((d) => !seen.has(d.device_id));
  const extra = [...seen].filter((id) => !expected.has(id));
  if (missing.length || extra.length) {
    throw conflict(
      'device_mismatch',
      "envelopes must cover exactly the recipients' devices and your other devices",
      {
        missing_devices: missing,
        extra_devices: extra,
      },
    );
  }
}

/** The envelopes' device ids; two envelopes for one device → 400. */
function uniqueDevices(envelopes: Envelope[]): Set<string> {
  const seen = new Set<string>();
  for (const e of envelopes) {
    if (seen.has(e.device_id)) {
      throw badRequest(`two envelopes for device ${e.device_id}`, [
        { field: 'body.envelopes', problem: 'duplicate device_id' },
      ]);
    }
    seen.add(e.device_id);
  }
  return seen;
}
