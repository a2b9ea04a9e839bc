/**
 * Shared setup for the k6 scripts (run by k6, not Node): register/login over the public API
 * with retries on 429, and send-shaped request bodies.
 *
 * The server never decrypts, so an envelope here is 1 KiB of random bytes plus the box's 16-byte
 * tag and a random 24-byte nonce: the same sizes a real `nacl.box` has (k6 has no tweetnacl).
 */

import { check, sleep } from 'k6';
import { randomBytes } from 'k6/crypto';
import encoding from 'k6/encoding';
import http, { type RefinedResponse, type ResponseType } from 'k6/http';

export const BASE_URL = (__ENV.BASE_URL ?? 'https://127.0.0.1:8443').replace(/\/+$/, '');
/** Users created in setup; each sends to the next one in a ring. */
export const USERS = Number(__ENV.USERS ?? 20);
export const PASSWORD = 'k6 load test password';

export interface BenchUser {
  username: string;
  userId: string;
  deviceId: string;
  token: string;
}

const b64 = (bytes: ArrayBuffer) => encoding.b64encode(bytes, 'std');
const json = { 'Content-Type': 'application/json' };

/** POST JSON, waiting out 429s (the edge limits register/login per IP) up to `tries` times. */
export function postJson(
  path: string,
  body: unknown,
  token?: string,
  tries = 30,
): RefinedResponse<ResponseType | undefined> {
  const headers: Record<string, string> = token ? { ...json, Authorization: `Bearer ${token}` } : json;
  for (let i = 1; ; i++) {
    const res = http.post(`${BASE_URL}${path}`, JSON.stringify(body), { headers, tags: { name: path } });
    if (res.status !== 429 || i >= tries) return res;
    sleep(Number(res.headers['Retry-After'] ?? 1));
  }
}

/** Registers `USERS` users with one logged-in device each (optionally with a push address). */
export function createUsers(prefix: string, userAddress?: string): BenchUser[] {
  const run = `${prefix}_${Date.now().toString(36)}`;
  const users: BenchUser[] = [];
  for (let i = 0; i < USERS; i++) {
    const username = `${run}_${i}`.slice(0, 32);
    const reg = postJson('/api/users', { username, password: PASSWORD });
    if (reg.status !== 201) throw new Error(`register ${username}: ${reg.status} ${String(reg.body)}`);
    const login = postJson('/api/login', {
      username,
      password: PASSWORD,
      public_key: b64(randomBytes(32)),
      device_name: 'k6',
      ...(userAddress ? { user_address: userAddress } : {}),
    });
    if (login.status !== 200) throw new Error(`login ${username}: ${login.status} ${String(login.body)}`);
    const session = login.json() as { user_id: string; device_id: string; token: string };
    users.push({ username, userId: session.user_id, deviceId: session.device_id, token: session.token });
  }
  return users;
}

/** A `POST /api/messages` body from user i to the next user in the ring: one 1 KiB envelope. */
export function sendBody(users: BenchUser[], i: number): { from: BenchUser; body: string } {
  const from = users[i % users.length] as BenchUser;
  const to = users[(i + 1) % users.length] as BenchUser;
  const envelope = {
    device_id: to.deviceId,
    nonce: b64(randomBytes(24)),
    ciphertext: b64(randomBytes(1024 + 16)),
  };
  return { from, body: JSON.stringify({ to: to.username, envelopes: [envelope] }) };
}

export function authHeaders(token: string): Record<string, string> {
  return { ...json, Authorization: `Bearer ${token}` };
}

let iteration = 0;

/** One send to the next user in the ring, tagged `send`, checked for 201 (both scripts' send shape). */
export function sendOne(users: BenchUser[]): void {
  const { from, body } = sendBody(users, __VU * 7919 + iteration++);
  const res = http.post(`${BASE_URL}/api/messages`, body, {
    headers: authHeaders(from.token),
    tags: { name: 'send' },
  });
  check(res, { 'sent (201)': (r) => r.status === 201 });
}
