import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import nacl from 'tweetnacl';
import { useListener } from '../helpers/listener.ts';
import { type Device, envelopesFor, keyOf, login, person, register, uniqueName } from '../helpers/people.ts';

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');

describe('abuse limits', () => {
  const t = useListener({ LOGIN_MAX_FAILURES: '4', LOGIN_LOCK_SECONDS: '120' });

  it('when a username keeps failing to log in, then 429 rate_limited with Retry-After, whatever its spelling', async () => {
    const user = await register(t.call, uniqueName(), 'the right password');
    const pk = b64(nacl.box.keyPair().publicKey);
    const attempt = (username: string, password: string) =>
      t.call('POST', '/api/login', { body: { username, password, public_key: pk } });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await attempt(user.username, `guess number ${i}`)).status);
    expect(statuses).to.deep.equal([401, 401, 401, 401]);
    for (const spelling of [user.username, user.username.toUpperCase()]) {
      const res = await attempt(spelling, 'the right password');
      expect(res.status).to.equal(429);
      expect(res.body).to.include({ error: 'rate_limited' });
      expect(res.body.message).to.be.a('string');
      const wait = Number(res.headers['retry-after']);
      expect(wait).to.be.within(1, 120);
    }
    // nothing was opened while locked
    expect(await t.listener.deps.db('devices').where({ user_id: user.userId })).to.deep.equal([]);
    const other = await register(t.call);
    await login(t.call, other);
  });

  it('when a token holder keeps guessing current_password, then 429 too, and login shares the budget', async () => {
    const [d] = (await person(t.call, 1)) as [Device];
    const patch = (current: string) =>
      t.call('PATCH', '/api/users/me', {
        token: d.token,
        body: { current_password: current, password: 'a new password 1' },
      });
    const remove = (password: string) =>
      t.call('DELETE', '/api/users/me', { token: d.token, body: { password } });
    const statuses = [(await patch('guess 0')).status, (await remove('guess 1')).status];
    for (let i = 2; i < 4; i++) statuses.push((await patch(`guess ${i}`)).status);
    expect(statuses).to.deep.equal([403, 403, 403, 403]);
    // Locked: even the right password is refused (no oracle), and nothing changes.
    for (const res of [await patch(d.password), await remove(d.password)]) {
      expect(res.status).to.equal(429);
      expect(res.body.error).to.equal('rate_limited');
      expect(Number(res.headers['retry-after'])).to.be.within(1, 120);
    }
    const pk = b64(nacl.box.keyPair().publicKey);
    const relogin = await t.call('POST', '/api/login', {
      body: { username: d.username, password: d.password, public_key: pk },
    });
    expect(relogin.status, 'the same per-username budget as login').to.equal(429);
    expect((await t.call('GET', '/api/users/me', { token: d.token })).status, 'account still there').to.equal(
      200,
    );
  });

  it('when the body is exactly 1 MiB it is parsed; one byte more is 413', async () => {
    const [d] = (await person(t.call, 1)) as [Device];
    const frame = (n: number) => {
      const shell = '{"up_to":1,"pad":""}';
      return shell.replace('""', `"${'x'.repeat(n - shell.length)}"`);
    };
    const at = await t.call('POST', '/api/messages/ack', {
      token: d.token,
      raw: frame(1024 * 1024),
      headers: { 'content-type': 'application/json' },
    });
    expect(at.status, 'parsed, then refused for the unknown field').to.equal(400);
    expect(JSON.stringify(at.body.details)).to.contain('pad');
    const over = await t.call('POST', '/api/messages/ack', {
      token: d.token,
      raw: frame(1024 * 1024 + 1),
      headers: { 'content-type': 'application/json' },
    });
    expect(over.status).to.equal(413);
    expect(over.body.error).to.equal('payload_too_large');
  });

  it('when a message has 1000 envelopes it is checked for coverage; 1001 is 400 before any lookup', async () => {
    const [a] = (await person(t.call, 1)) as [Device];
    const [b] = (await person(t.call, 1)) as [Device];
    const [real] = envelopesFor(a, [keyOf(b)], 'x');
    const fake = (n: number) =>
      Array.from({ length: n }, () => ({
        device_id: crypto.randomUUID(),
        nonce: b64(nacl.randomBytes(24)),
        ciphertext: 'AAAA',
      }));
    const thousand = await t.call('POST', '/api/messages', {
      token: a.token,
      body: { to: b.username, envelopes: [real, ...fake(999)] },
    });
    expect(thousand.status).to.equal(409);
    expect(thousand.body.extra_devices).to.have.length(999);
    const more = await t.call('POST', '/api/messages', {
      token: a.token,
      body: { to: b.username, envelopes: [real, ...fake(1000)] },
    });
    expect(more.status).to.equal(400);
    expect(await t.listener.deps.db('messages').where({ sender_device_id: a.deviceId })).to.deep.equal([]);
  });

  it('when tokens are issued, then they are 43 url-safe chars of 32 random bytes and only their SHA-256 is stored', async () => {
    // Two users: one may have at most DEVICES_PER_USER_MAX (10) devices.
    const users = [await register(t.call), await register(t.call)];
    const ids = users.map((u) => u.userId);
    const tokens: string[] = [];
    for (let i = 0; i < 12; i++) tokens.push((await login(t.call, users[i % 2] as (typeof users)[0])).token);
    expect(new Set(tokens).size).to.equal(tokens.length);
    for (const t of tokens) {
      expect(t).to.match(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(t, 'base64url')).to.have.length(32);
    }
    // no bias towards a few characters: 12 x 43 chars use most of the alphabet
    expect(new Set(tokens.join('')).size).to.be.above(50);
    const rows = await t.listener.deps.db('sessions').whereIn('user_id', ids);
    expect(rows).to.have.length(tokens.length);
    const stored = new Set(rows.map((r: { token_hash: Buffer }) => r.token_hash.toString('hex')));
    for (const r of rows) expect((r as { token_hash: Buffer }).token_hash).to.have.length(32);
    for (const t of tokens) expect(stored.has(createHash('sha256').update(t).digest('hex'))).to.equal(true);
    const everything = JSON.stringify([
      rows,
      await t.listener.deps.db('devices').whereIn('user_id', ids),
      await t.listener.deps.db('users').whereIn('id', ids),
    ]);
    for (const t of tokens) expect(everything).to.not.contain(t);
    for (const user of users) expect(everything).to.not.contain(user.password);
    const [u] = await t.listener.deps.db('users').whereIn('id', ids);
    expect(u.password_hash).to.match(/^scrypt\$\d+\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  });

  it('when a token is guessed or truncated, then 401', async () => {
    const [d] = (await person(t.call, 1)) as [Device];
    for (const guess of [
      d.token.slice(0, 42),
      `${d.token.slice(0, 42)}${d.token[42] === 'A' ? 'B' : 'A'}`,
      randomBytes(32).toString('base64url'),
    ]) {
      expect((await t.call('GET', '/api/users/me', { token: guess })).status).to.equal(401);
    }
    expect((await t.call('GET', '/api/users/me', { token: d.token })).status).to.equal(200);
  });
});
