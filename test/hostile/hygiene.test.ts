import { expect } from 'chai';
import { loadListenerConfig } from '../../listener/config.ts';
import { hashPassword } from '../../listener/crypto/password.ts';
import { testEnv } from '../helpers/env.ts';
import { useListener } from '../helpers/listener.ts';
import { type Device, person } from '../helpers/people.ts';

describe('hygiene: password hashing cost and session lifetimes', () => {
  const t = useListener({ SESSION_TTL_DAYS: '30', SESSION_MAX_DAYS: '90' });
  const db = () => t.listener.deps.db;
  const row = async (d: Device) =>
    (await db()('sessions').where({ device_id: d.deviceId }).first()) as {
      created_at: Date;
      expires_at: Date;
    };
  // The listener writes activity (and slides the expiry) at most once a minute per device.
  const longIdle = (d: Device) =>
    db()('devices')
      .where({ id: d.deviceId })
      .update({ last_active_at: db().raw(`now() - interval '1 hour'`) });

  it('when nothing overrides it, then scrypt uses N = 2^17 (OWASP) and still hashes within maxmem', async () => {
    const env = testEnv();
    delete env.PASSWORD_HASH_COST;
    expect(loadListenerConfig(env).PASSWORD_HASH_COST).to.equal(2 ** 17);
    expect(await hashPassword('a password', 2 ** 17)).to.match(/^scrypt\$131072\$8\$1\$/);
  });

  it('when a session is used every day, then it still ends SESSION_MAX_DAYS after its login', async () => {
    const [d] = (await person(t.call, 1)) as [Device];
    await db()('sessions')
      .where({ device_id: d.deviceId })
      .update({ created_at: db().raw(`now() - interval '89 days'`) });
    await longIdle(d);
    expect((await t.call('GET', '/api/users/me', { token: d.token })).status).to.equal(200);
    const { created_at, expires_at } = await row(d);
    // Slid, but only to the absolute end (created_at + 90 d ≈ one day from now), not 30 days on.
    expect(expires_at.getTime()).to.be.at.most(created_at.getTime() + 90 * 86_400_000 + 1000);
    expect(expires_at.getTime() - Date.now()).to.be.below(2 * 86_400_000);
  });

  it('when a session is older than SESSION_MAX_DAYS, then its token is refused however recently it was used', async () => {
    const [d] = (await person(t.call, 1)) as [Device];
    // A live sliding expiry, but the login was 91 days ago.
    await db()('sessions')
      .where({ device_id: d.deviceId })
      .update({ created_at: db().raw(`now() - interval '91 days'`) });
    await longIdle(d);
    const res = await t.call('GET', '/api/users/me', { token: d.token });
    expect(res.status).to.equal(401);
    expect((await t.call('GET', '/api/devices', { token: d.token })).status, 'and stays refused').to.equal(
      401,
    );
  });

  it('when a session is opened, then its expiry is the sliding one and SESSION_MAX_DAYS bounds it', async () => {
    const [d] = (await person(t.call, 1)) as [Device];
    const { created_at, expires_at } = await row(d);
    const days = (expires_at.getTime() - created_at.getTime()) / 86_400_000;
    expect(days).to.be.closeTo(30, 0.01);
    expect(() => loadListenerConfig(testEnv({ SESSION_TTL_DAYS: '30', SESSION_MAX_DAYS: '7' }))).to.throw(
      /SESSION_MAX_DAYS/,
    );
  });
});
