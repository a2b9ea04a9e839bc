import { randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';
import type { Call } from './http.ts';

export interface Device {
  userId: string;
  username: string;
  password: string;
  deviceId: string;
  token: string;
  keys: nacl.BoxKeyPair;
}

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');

export function uniqueName(prefix = 'u'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

export async function register(call: Call, username = uniqueName(), password = 'correct horse battery') {
  const res = await call('POST', '/api/users', { body: { username, password } });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { userId: res.body.user_id as string, username: res.body.username as string, password };
}

export async function login(
  call: Call,
  user: { username: string; password: string },
  extra: Record<string, unknown> = {},
  keys = nacl.box.keyPair(),
): Promise<Device> {
  const res = await call('POST', '/api/login', {
    body: { username: user.username, password: user.password, public_key: b64(keys.publicKey), ...extra },
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { ...user, userId: res.body.user_id, deviceId: res.body.device_id, token: res.body.token, keys };
}

/** A registered user with `n` logged-in devices. */
export async function person(call: Call, n = 1): Promise<Device[]> {
  const user = await register(call);
  const devices: Device[] = [];
  for (let i = 0; i < n; i++) devices.push(await login(call, user, { device_name: `device ${i + 1}` }));
  return devices;
}

/** One nacl.box envelope per target device, from `from`'s key pair. */
export function envelopesFor(
  from: Device,
  targets: { device_id: string; public_key: string }[],
  text: string,
) {
  return targets.map((t) => {
    const nonce = nacl.randomBytes(24);
    const box = nacl.box(Buffer.from(text), nonce, Buffer.from(t.public_key, 'base64'), from.keys.secretKey);
    return { device_id: t.device_id, nonce: b64(nonce), ciphertext: b64(box) };
  });
}

export function keyOf(d: Device) {
  return { device_id: d.deviceId, public_key: b64(d.keys.publicKey) };
}

/** Decrypts an event addressed to `to`. */
export function decrypt(
  to: Device,
  event: { nonce: string; ciphertext: string; from: { public_key: string } },
) {
  const opened = nacl.box.open(
    Buffer.from(event.ciphertext, 'base64'),
    Buffer.from(event.nonce, 'base64'),
    Buffer.from(event.from.public_key, 'base64'),
    to.keys.secretKey,
  );
  return opened ? Buffer.from(opened).toString() : null;
}
