import type { Session } from './session.ts';
import type { Device, DirectoryEntry, Profile } from './types.ts';

/** The directory entry of a user: their devices and public keys. */
export function lookup(s: Session, username: string): Promise<DirectoryEntry> {
  return s.http.json<DirectoryEntry>('GET', `/api/users/${encodeURIComponent(username.toLowerCase())}`);
}

export function me(s: Session): Promise<Profile> {
  return s.http.json<Profile>('GET', '/api/users/me');
}

export async function listDevices(s: Session): Promise<Device[]> {
  return (await s.http.json<{ devices: Device[] }>('GET', '/api/devices')).devices;
}

/** Sets (or clears, with null) where this device wants pushes; setting one pushes what is queued. */
export function setAddress(s: Session, userAddress: string | null): Promise<Device> {
  return s.http.json<Device>('PATCH', '/api/devices/current', { body: { user_address: userAddress } });
}

export function renameDevice(s: Session, name: string): Promise<Device> {
  return s.http.json<Device>('PATCH', '/api/devices/current', { body: { name } });
}

export async function removeDevice(s: Session, deviceId: string): Promise<void> {
  await s.http.json('DELETE', `/api/devices/${encodeURIComponent(deviceId)}`);
}

/** The ed25519 key that signs pushes, base64: the input of `verifyPush`. */
export async function serverKey(s: Session): Promise<string> {
  return (await s.http.json<{ public_key: string }>('GET', '/api/server-key', { auth: false })).public_key;
}

/** Which of these users have a device with an open live stream (at most 100 names). */
export async function presence(s: Session, usernames: string[]): Promise<string[]> {
  const query = { users: usernames.map((u) => u.toLowerCase()).join(',') };
  return (await s.http.json<{ online: string[] }>('GET', '/api/presence', { query })).online;
}
