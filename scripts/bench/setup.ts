import { randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';
import { Agent, request } from 'undici';
import { envelope, sendBody } from './payload.ts';
import type { PreparedRequest } from './protocol.ts';
import type { Sinks } from './sink.ts';
import { sleep } from './stats.ts';

export interface BenchUser {
  username: string;
  deviceId: string;
  token: string;
  keys: nacl.BoxKeyPair;
}

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
const PASSWORD = 'bench password, not a secret';

/** HTTPS to the stack's nginx on 127.0.0.1 (its certificate is self-signed). */
function benchAgent(): Agent {
  return new Agent({ connect: { rejectUnauthorized: false }, connections: 16 });
}

async function post(
  agent: Agent,
  origin: string,
  path: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, string> }> {
  for (let attempt = 1; ; attempt++) {
    const res = await request(`${origin}${path}`, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.body.text();
    // A running stack (--url) may have its edge limits on, or a backing service may be restarting
    // (a shared machine): wait them out.
    if ((res.statusCode === 429 || res.statusCode === 502 || res.statusCode === 503) && attempt < 60) {
      await sleep(1000 * Number(res.headers['retry-after'] ?? 1));
      continue;
    }
    return { status: res.statusCode, json: text ? JSON.parse(text) : {} };
  }
}

/**
 * Registers `n` users over the API, each logging in one device whose push address is its own
 * path on a sink server. Runs 8 at a time.
 */
export async function createUsers(origin: string, n: number, sinks: Sinks): Promise<BenchUser[]> {
  const agent = benchAgent();
  const run = randomBytes(3).toString('hex');
  const users: BenchUser[] = new Array(n);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) {
      const username = `bench_${run}_${i}`;
      const reg = await post(agent, origin, '/api/users', { username, password: PASSWORD });
      // 409: an earlier attempt that answered 503 had registered it after all (the name is this run's).
      if (reg.status !== 201 && reg.status !== 409)
        throw new Error(`register ${username}: ${reg.status} ${JSON.stringify(reg.json)}`);
      const keys = nacl.box.keyPair();
      const login = await post(agent, origin, '/api/login', {
        username,
        password: PASSWORD,
        public_key: b64(keys.publicKey),
        device_name: 'bench',
        user_address: sinks.addressFor(username, i),
      });
      if (login.status !== 200)
        throw new Error(`login ${username}: ${login.status} ${JSON.stringify(login.json)}`);
      users[i] = { username, deviceId: String(login.json.device_id), token: String(login.json.token), keys };
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(8, n) }, worker));
  } finally {
    await agent.close();
  }
  return users;
}

/** The ed25519 key pushes are signed with, for the sinks to verify. */
export async function serverKey(origin: string): Promise<Uint8Array> {
  const agent = benchAgent();
  try {
    const res = await request(`${origin}/api/server-key`, { dispatcher: agent });
    const body = (await res.body.json()) as { public_key: string };
    return new Uint8Array(Buffer.from(body.public_key, 'base64'));
  } finally {
    await agent.close();
  }
}

/**
 * Send requests, encrypted ahead of time: user i sends to user i+1 (a ring, so every device
 * both sends and receives), `perUser` fresh envelopes each. Ordered so consecutive requests come
 * from different users.
 */
export function prepareSends(users: BenchUser[], perUser: number): PreparedRequest[] {
  const out: PreparedRequest[] = [];
  for (let k = 0; k < perUser; k++) {
    users.forEach((from, i) => {
      const to = users[(i + 1) % users.length] as BenchUser;
      const env = envelope(from.keys, { device_id: to.deviceId, public_key: b64(to.keys.publicKey) });
      out.push({
        method: 'POST',
        path: '/api/messages',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${from.token}` },
        body: sendBody(to.username, env),
      });
    });
  }
  return out;
}
