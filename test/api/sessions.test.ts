import { expect } from 'chai';
import nacl from 'tweetnacl';
import { client } from '../helpers/http.ts';
import { startListener, useListener } from '../helpers/listener.ts';
import { decrypt, envelopesFor, keyOf, login, person, register, uniqueName } from '../helpers/people.ts';

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');

describe('sessions: login, resume, logout, expiry', () => {
  const t = useListener({ LOGIN_MAX_FAILURES: '3', LOGIN_LOCK_SECONDS: '30' });

  it('when logging in without device_id, then a new device and a 43-char token with its expiry are returned', async () => {
    const user = await register(t.call);
    const before = Date.now();
    const res = await t.call('POST', '/api/login', {
      body: {
        username: user.username,
        password: user.password,
        public_key: b64(nacl.box.keyPair().publicKey),
      },
    });
    expect(res.status).to.equal(200);
    expect(res.body).to.have.keys(['user_id', 'device_id', 'token', 'expires_at']);
    expect(res.body.user_id).to.equal(user.userId);
    expect(res.body.token).to.match(/^[A-Za-z0-9_-]{43}$/);
    const ttl = Date.parse(res.body.expires_at) - before;
    expect(ttl).to.be.within(29.9 * 86400e3, 30.1 * 86400e3);
    const second = await login(t.call, user);
    expect(second.deviceId).to.not.equal(res.body.device_id);
    const devices = await t.call('GET', '/api/devices', { token: second.token });
    expect(devices.body.devices).to.have.length(2);
  });

  it('when resuming a device with its key, then the old token dies and the device keeps its id', async () => {
    const [d] = await person(t.call, 1);
    if (!d) throw new Error('setup');
    const resumed = await login(t.call, d, { device_id: d.deviceId }, d.keys);
    expect(resumed.deviceId).to.equal(d.deviceId);
    expect(resumed.token).to.not.equal(d.token);
    expect((await t.call('GET', '/api/users/me', { token: d.token })).status).to.equal(401);
    expect((await t.call('GET', '/api/users/me', { token: resumed.token })).status).to.equal(200);
    const devices = await t.call('GET', '/api/devices', { token: resumed.token });
    expect(devices.body.devices.map((x: { device_id: string }) => x.device_id)).to.deep.equal([d.deviceId]);
  });

  it('when resuming with another key, then 409 device_key_mismatch and the old session lives on', async () => {
    const [d] = await person(t.call, 1);
    if (!d) throw new Error('setup');
    const res = await t.call('POST', '/api/login', {
      body: {
        username: d.username,
        password: d.password,
        device_id: d.deviceId,
        public_key: b64(nacl.box.keyPair().publicKey),
      },
    });
    expect(res.status).to.equal(409);
    expect(res.body.error).to.equal('device_key_mismatch');
    expect((await t.call('GET', '/api/users/me', { token: d.token })).status).to.equal(200);
  });

  it("when resuming another user's device or an unknown one, then 404 and nothing changes", async () => {
    const [mine] = await person(t.call, 1);
    const [theirs] = await person(t.call, 1);
    if (!mine || !theirs) throw new Error('setup');
    for (const device_id of [theirs.deviceId, '7b0e2d9c-1111-4111-8111-111111111111']) {
      const res = await t.call('POST', '/api/login', {
        body: {
          username: mine.username,
          password: mine.password,
          device_id,
          public_key: keyOf(theirs).public_key,
        },
      });
      expect(res.status).to.equal(404);
      expect(res.body.error).to.equal('not_found');
    }
    expect((await t.call('GET', '/api/users/me', { token: theirs.token })).body.user_id).to.equal(
      theirs.userId,
    );
    expect((await t.call('GET', '/api/devices', { token: mine.token })).body.devices).to.have.length(1);
  });

  it('when the user is unknown or the password wrong, then the same 401 invalid_credentials', async () => {
    const user = await register(t.call);
    const pk = b64(nacl.box.keyPair().publicKey);
    const unknown = await t.call('POST', '/api/login', {
      body: { username: uniqueName(), password: user.password, public_key: pk },
    });
    const wrong = await t.call('POST', '/api/login', {
      body: { username: user.username, password: 'wrong password', public_key: pk },
    });
    expect(unknown.status).to.equal(401);
    expect(wrong.status).to.equal(401);
    expect(unknown.body).to.deep.equal(wrong.body);
    expect(wrong.body.error).to.equal('invalid_credentials');
  });

  it('when one username fails too often, then 429 with Retry-After even for the right password, other users unaffected', async () => {
    const user = await register(t.call);
    const other = await register(t.call);
    const pk = b64(nacl.box.keyPair().publicKey);
    for (let i = 0; i < 3; i++) {
      const res = await t.call('POST', '/api/login', {
        body: { username: user.username.toUpperCase(), password: `wrong ${i} password`, public_key: pk },
      });
      expect(res.status).to.equal(401);
    }
    const locked = await t.call('POST', '/api/login', {
      body: { username: user.username, password: user.password, public_key: pk },
    });
    expect(locked.status).to.equal(429);
    expect(locked.body.error).to.equal('rate_limited');
    expect(Number(locked.headers['retry-after'])).to.be.within(1, 30);
    await login(t.call, other);
    // an unknown name is counted (and locked) the same way, revealing nothing
    const ghost = uniqueName();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push(
        (
          await t.call('POST', '/api/login', {
            body: { username: ghost, password: 'whatever1', public_key: pk },
          })
        ).status,
      );
    }
    expect(statuses).to.deep.equal([401, 401, 401, 429]);
  });

  it('when logging out, then the token dies, the device stays, receives into its inbox and gets it on resume', async () => {
    const [a1, a2] = await person(t.call, 2);
    const [b] = await person(t.call, 1);
    if (!a1 || !a2 || !b) throw new Error('setup');
    const patched = await t.call('PATCH', '/api/devices/current', {
      token: a1.token,
      body: { user_address: 'http://127.0.0.1:9/push' },
    });
    expect(patched.body.has_address).to.equal(true);
    expect((await t.call('POST', '/api/logout', { token: a1.token })).status).to.equal(204);
    expect((await t.call('GET', '/api/users/me', { token: a1.token })).status).to.equal(401);
    expect((await t.call('POST', '/api/logout', { token: a1.token })).status).to.equal(401);
    const list = await t.call('GET', '/api/devices', { token: a2.token });
    const d1 = list.body.devices.find((d: { device_id: string }) => d.device_id === a1.deviceId);
    expect(d1).to.include({ signed_in: false, has_address: false });
    const dir = await t.call('GET', `/api/users/${a1.username}`, { token: b.token });
    expect(dir.body.devices).to.have.length(2);
    const sent = await t.call('POST', '/api/messages', {
      token: b.token,
      body: { to: a1.username, envelopes: envelopesFor(b, dir.body.devices, 'while you were out') },
    });
    expect(sent.status).to.equal(201);
    const back = await login(t.call, a1, { device_id: a1.deviceId }, a1.keys);
    const pull = await t.call('GET', '/api/messages', { token: back.token });
    expect(pull.body.events).to.have.length(1);
    expect(decrypt(back, pull.body.events[0])).to.equal('while you were out');
  });

  it('when one device is resumed many times at once, then every login answers 200 and only the last token lives', async () => {
    const [d] = await person(t.call, 1);
    if (!d) throw new Error('setup');
    const body = {
      username: d.username,
      password: d.password,
      public_key: keyOf(d).public_key,
      device_id: d.deviceId,
    };
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => t.call('POST', '/api/login', { body })),
    );
    expect(answers.map((r) => r.status)).to.deep.equal(Array(8).fill(200));
    const alive = [];
    for (const r of answers)
      alive.push((await t.call('GET', '/api/users/me', { token: r.body.token })).status);
    expect(alive.filter((s) => s === 200)).to.have.length(1);
    expect(await t.listener.deps.db('sessions').where({ device_id: d.deviceId })).to.have.length(1);
  });

  it('when a device is deleted while it is being resumed, then the login answers 200 or 404, never 500', async () => {
    for (let i = 0; i < 4; i++) {
      const [d, other] = await person(t.call, 2);
      if (!d || !other) throw new Error('setup');
      const body = {
        username: d.username,
        password: d.password,
        public_key: keyOf(d).public_key,
        device_id: d.deviceId,
      };
      const [resume, del] = await Promise.all([
        t.call('POST', '/api/login', { body }),
        t.call('DELETE', `/api/devices/${d.deviceId}`, { token: other.token }),
      ]);
      expect(del.status).to.equal(204);
      expect([200, 404]).to.include(resume.status);
      expect(await t.listener.deps.db('devices').where({ id: d.deviceId })).to.deep.equal([]);
      expect(await t.listener.deps.db('sessions').where({ device_id: d.deviceId })).to.deep.equal([]);
    }
  });

  it('when an account is deleted while it logs in, then the login answers 200 or 401, never 500', async () => {
    for (let i = 0; i < 6; i++) {
      const [d] = await person(t.call, 1);
      if (!d) throw new Error('setup');
      const pk = b64(nacl.box.keyPair().publicKey);
      const [fresh, del] = await Promise.all([
        t.call('POST', '/api/login', {
          body: { username: d.username, password: d.password, public_key: pk },
        }),
        t.call('DELETE', '/api/users/me', { token: d.token, body: { password: d.password } }),
      ]);
      expect(del.status).to.equal(204);
      expect([200, 401], JSON.stringify(fresh.body)).to.include(fresh.status);
      expect(await t.listener.deps.db('devices').where({ user_id: d.userId })).to.deep.equal([]);
    }
  });

  it('when a session has expired, then its token is 401 and a fresh login works', async () => {
    const [d] = await person(t.call, 1);
    if (!d) throw new Error('setup');
    await t.listener.deps
      .db('sessions')
      .where({ device_id: d.deviceId })
      .update({ expires_at: new Date(Date.now() - 1000) });
    const res = await t.call('GET', '/api/users/me', { token: d.token });
    expect(res.status).to.equal(401);
    expect(res.body.error).to.equal('unauthorized');
    const again = await login(t.call, d, { device_id: d.deviceId }, d.keys);
    expect((await t.call('GET', '/api/users/me', { token: again.token })).status).to.equal(200);
  });

  it('when SESSION_TTL_DAYS is configured, then expires_at follows it', async () => {
    const short = await startListener({ SESSION_TTL_DAYS: '0.5' });
    try {
      const c = client(short.url);
      const user = await register(c);
      const d = await login(c, user);
      const row = await short.deps.db('sessions').where({ device_id: d.deviceId }).first();
      const hours = (row.expires_at.getTime() - Date.now()) / 3600e3;
      expect(hours).to.be.within(11.9, 12.1);
    } finally {
      await short.close();
    }
  });
});

describe('client address (X-Forwarded-For)', () => {
  async function ipSeen(overrides: Record<string, string>, xff: string | undefined) {
    const l = await startListener(overrides);
    try {
      const c = client(l.url);
      const user = await register(c);
      const headers: Record<string, string> = { 'user-agent': 'probe/1.0' };
      if (xff) headers['x-forwarded-for'] = xff;
      const res = await c('POST', '/api/login', {
        headers,
        body: {
          username: user.username,
          password: user.password,
          public_key: b64(nacl.box.keyPair().publicKey),
        },
      });
      const list = await c('GET', '/api/devices', { token: res.body.token });
      return list.body.devices[0] as { last_ip: string; user_agent: string };
    } finally {
      await l.close();
    }
  }

  it('when the peer is a trusted proxy, then the rightmost untrusted X-Forwarded-For hop is the client', async () => {
    const d = await ipSeen({ TRUSTED_PROXIES: '127.0.0.1/32,10.0.0.0/8' }, '6.6.6.6, 203.0.113.7, 10.1.2.3');
    expect(d.last_ip).to.equal('203.0.113.7');
    expect(d.user_agent).to.equal('probe/1.0');
  });

  it('when the peer is not a trusted proxy, then X-Forwarded-For is ignored', async () => {
    const d = await ipSeen({ TRUSTED_PROXIES: '10.0.0.1' }, '203.0.113.7');
    expect(d.last_ip).to.equal('127.0.0.1');
  });

  it('when X-Forwarded-For is garbage, then the peer address is used', async () => {
    const d = await ipSeen({ TRUSTED_PROXIES: '127.0.0.1' }, 'not-an-ip, <script>');
    expect(d.last_ip).to.equal('127.0.0.1');
  });
});
