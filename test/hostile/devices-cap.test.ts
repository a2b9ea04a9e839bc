import { expect } from 'chai';
import nacl from 'tweetnacl';
import { ENVELOPE_LIMIT } from '../../common/config.ts';
import { loadListenerConfig } from '../../listener/config.ts';
import { cleanup } from '../../listener/jobs/cleanup.ts';
import { MAX_ENVELOPES } from '../../listener/routes/messages.ts';
import { testEnv } from '../helpers/env.ts';
import { useListener } from '../helpers/listener.ts';
import { type Device, login, person, register } from '../helpers/people.ts';

const pk = () => Buffer.from(nacl.box.keyPair().publicKey).toString('base64');

describe('devices per user: a cap, and expiry of devices unseen for long', () => {
  const t = useListener({ DEVICES_PER_USER_MAX: '3', DEVICE_INACTIVE_DAYS: '90' });
  const devicesOf = (userId: string) => t.listener.deps.db('devices').where({ user_id: userId });

  it('when a login would add a device past DEVICES_PER_USER_MAX, then 409 too_many_devices and nothing is stored', async () => {
    const user = await register(t.call);
    const mine: Device[] = [];
    for (let i = 0; i < 3; i++) mine.push(await login(t.call, user));
    const res = await t.call('POST', '/api/login', {
      body: { username: user.username, password: user.password, public_key: pk() },
    });
    expect(res.status).to.equal(409);
    expect(res.body.error).to.equal('too_many_devices');
    expect(res.body.message).to.match(/at most 3 devices/);
    expect(await devicesOf(user.userId)).to.have.length(3);
    expect(await t.listener.deps.db('sessions').where({ user_id: user.userId })).to.have.length(3);

    // Resuming one of the three is not a new device; removing one makes room.
    const first = mine[0] as Device;
    const resumed = await t.call('POST', '/api/login', {
      body: {
        username: user.username,
        password: user.password,
        public_key: Buffer.from(first.keys.publicKey).toString('base64'),
        device_id: first.deviceId,
      },
    });
    expect(resumed.status).to.equal(200);
    const gone = mine[2] as Device;
    expect(
      (await t.call('DELETE', `/api/devices/${gone.deviceId}`, { token: resumed.body.token })).status,
    ).to.equal(204);
    await login(t.call, user);
    expect(await devicesOf(user.userId)).to.have.length(3);
  });

  it('when many logins of one user race at the cap, then exactly the cap is reached', async () => {
    const user = await register(t.call);
    const replies = await Promise.all(
      Array.from({ length: 8 }, () =>
        t.call('POST', '/api/login', {
          body: { username: user.username, password: user.password, public_key: pk() },
        }),
      ),
    );
    expect(replies.filter((r) => r.status === 200)).to.have.length(3);
    expect(replies.filter((r) => r.status === 409 && r.body.error === 'too_many_devices')).to.have.length(5);
    expect(await devicesOf(user.userId)).to.have.length(3);
  });

  it('when a device is unseen for DEVICE_INACTIVE_DAYS, then the cleanup job deletes it and revokes its user, and no other', async () => {
    const [stale, fresh] = (await person(t.call, 2)) as [Device, Device];
    const [bystander] = (await person(t.call, 1)) as [Device];
    const { db, config, log } = t.listener.deps;
    await db('devices')
      .where({ id: stale.deviceId })
      .update({ last_active_at: db.raw(`now() - interval '91 days'`) });
    await db('devices')
      .where({ id: bystander.deviceId })
      .update({ last_active_at: db.raw(`now() - interval '89 days'`) });
    const revoked: string[] = [];
    await cleanup(db, config, log, async (userId) => {
      revoked.push(userId);
    });
    expect(revoked).to.deep.equal([stale.userId]);
    expect((await db('devices').where({ user_id: stale.userId })).map((d) => d.id)).to.deep.equal([
      fresh.deviceId,
    ]);
    expect(await db('sessions').where({ device_id: stale.deviceId })).to.deep.equal([]);
    expect((await t.call('GET', '/api/users/me', { token: stale.token })).status).to.equal(401);
    expect((await t.call('GET', '/api/users/me', { token: fresh.token })).status).to.equal(200);
    expect((await t.call('GET', '/api/users/me', { token: bystander.token })).status).to.equal(200);
  });

  it('when members × devices per user could need more envelopes than one message holds, then the configuration is refused', () => {
    expect(MAX_ENVELOPES).to.equal(ENVELOPE_LIMIT);
    const c = loadListenerConfig(testEnv());
    expect(c.GROUP_MEMBERS_MAX * c.DEVICES_PER_USER_MAX - 1).to.be.at.most(MAX_ENVELOPES);
    expect(() =>
      loadListenerConfig(testEnv({ GROUP_MEMBERS_MAX: '500', DEVICES_PER_USER_MAX: '20' })),
    ).to.throw(/GROUP_MEMBERS_MAX/);
    expect(
      loadListenerConfig(testEnv({ GROUP_MEMBERS_MAX: '50', DEVICES_PER_USER_MAX: '20' })).GROUP_MEMBERS_MAX,
    ).to.equal(50);
  });
});
