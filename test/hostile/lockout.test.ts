import { expect } from 'chai';
import nacl from 'tweetnacl';
import { loadListenerConfig } from '../../listener/config.ts';
import { failureSource } from '../../listener/db/login-failures.ts';
import { testEnv } from '../helpers/env.ts';
import { useListener } from '../helpers/listener.ts';
import { register } from '../helpers/people.ts';

const pk = () => Buffer.from(nacl.box.keyPair().publicKey).toString('base64');

describe('lock-out: failed logins are counted per place, under a slower per-username ceiling', () => {
  const t = useListener({
    LOGIN_MAX_FAILURES: '3',
    LOGIN_LOCK_SECONDS: '120',
    LOGIN_USER_MAX_FAILURES: '7',
    LOGIN_USER_WINDOW_SECONDS: '120',
  });
  // The listener trusts the loopback proxy, so X-Forwarded-For names the place (as behind nginx).
  const from = (ip: string) => (username: string, password: string) =>
    t.call('POST', '/api/login', {
      headers: { 'x-forwarded-for': ip },
      body: { username, password, public_key: pk() },
    });

  it("when an attacker exhausts the budget from one place, then the owner still logs in from another, and the attacker's place waits", async () => {
    const owner = await register(t.call, undefined, 'the right password');
    const attacker = from('203.0.113.5');
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await attacker(owner.username, `guess ${i}`)).status);
    expect(statuses).to.deep.equal([401, 401, 401, 429]);
    const locked = await attacker(owner.username, 'the right password');
    expect(locked.status, 'even the right password from the locked place').to.equal(429);
    expect(Number(locked.headers['retry-after'])).to.be.within(1, 120);

    const home = await from('198.51.100.7')(owner.username, 'the right password');
    expect(home.status, 'the owner from elsewhere').to.equal(200);
    expect(home.body.token).to.be.a('string');
  });

  it('when the failures come from addresses of one IPv6 /64, then they are one place', async () => {
    const owner = await register(t.call, undefined, 'the right password');
    const statuses = [];
    for (const host of ['1', '2', '3', '4'])
      statuses.push((await from(`2001:db8:7:8::${host}`)(owner.username, 'wrong')).status);
    expect(statuses).to.deep.equal([401, 401, 401, 429]);
    expect((await from('2001:db8:7:9::1')(owner.username, 'the right password')).status).to.equal(200);
  });

  it('when failures from many places reach the per-username ceiling, then every place waits, the owner too', async () => {
    const owner = await register(t.call, undefined, 'the right password');
    const statuses = [];
    for (const place of ['203.0.113.10', '203.0.113.11', '203.0.113.12'])
      for (let i = 0; i < 3; i++) statuses.push((await from(place)(owner.username, 'wrong')).status);
    // 7 failures reach the ceiling: the 8th and 9th attempts are refused before a password check.
    expect(statuses).to.deep.equal([401, 401, 401, 401, 401, 401, 401, 429, 429]);
    const res = await from('198.51.100.8')(owner.username, 'the right password');
    expect(res.status).to.equal(429);
    expect(res.body.error).to.equal('rate_limited');
  });

  it('when a right password succeeds from a place, then that place starts over', async () => {
    const owner = await register(t.call, undefined, 'the right password');
    const place = from('203.0.113.20');
    for (let i = 0; i < 2; i++) expect((await place(owner.username, 'wrong')).status).to.equal(401);
    expect((await place(owner.username, 'the right password')).status).to.equal(200);
    for (let i = 0; i < 2; i++) expect((await place(owner.username, 'wrong')).status).to.equal(401);
    expect((await place(owner.username, 'the right password')).status).to.equal(200);
  });

  it('when the ceiling could be reached from one place alone, then the configuration is refused', () => {
    expect(() => loadListenerConfig(testEnv({ LOGIN_USER_MAX_FAILURES: '600' }))).to.throw(
      /LOGIN_USER_MAX_FAILURES/,
    );
    expect(loadListenerConfig(testEnv()).LOGIN_USER_MAX_FAILURES).to.equal(1000);
  });

  it('when places are named, then IPv4 is the address and IPv6 its /64', () => {
    expect(failureSource('203.0.113.5')).to.equal('203.0.113.5');
    expect(failureSource('::ffff:203.0.113.5')).to.equal('203.0.113.5');
    expect(failureSource('2001:db8:7:8:1:2:3:4')).to.equal('2001:db8:7:8::/64');
    expect(failureSource(null)).to.equal('unknown');
  });
});
