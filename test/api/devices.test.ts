import { expect } from 'chai';
import { useListener } from '../helpers/listener.ts';
import { envelopesFor, keyOf, login, person, register } from '../helpers/people.ts';

describe('devices: list, patch current, delete', () => {
  const t = useListener();

  it('when listing devices, then each has its fields and only the calling one is current', async () => {
    const user = await register(t.call);
    const d1 = await login(t.call, user, { device_name: 'phone' });
    const d2 = await t.call('POST', '/api/login', {
      headers: { 'user-agent': 'laptop-agent/2' },
      body: { username: user.username, password: user.password, public_key: keyOf(d1).public_key },
    });
    const res = await t.call('GET', '/api/devices/', { token: d1.token });
    expect(res.status).to.equal(200);
    expect(res.body).to.have.keys(['devices']);
    const [first, second] = res.body.devices;
    expect(first).to.have.keys([
      'device_id',
      'name',
      'public_key',
      'created_at',
      'last_active_at',
      'last_ip',
      'user_agent',
      'has_address',
      'signed_in',
      'current',
    ]);
    expect(first).to.include({
      device_id: d1.deviceId,
      name: 'phone',
      public_key: keyOf(d1).public_key,
      last_ip: '127.0.0.1',
      has_address: false,
      signed_in: true,
      current: true,
    });
    expect(second).to.include({
      device_id: d2.body.device_id,
      name: null,
      user_agent: 'laptop-agent/2',
      current: false,
    });
    expect(Date.parse(first.created_at)).to.be.closeTo(Date.now(), 60_000);
    expect(Date.parse(first.last_active_at)).to.be.closeTo(Date.now(), 60_000);
  });

  it('when patching the current device, then name and http(s) address change and null clears the address', async () => {
    const [d] = await person(t.call, 1);
    if (!d) throw new Error('setup');
    const set = await t.call('PATCH', '/api/devices/current', {
      token: d.token,
      body: { name: 'work laptop', user_address: 'https://push.example.com/hook?x=1' },
    });
    expect(set.status).to.equal(200);
    expect(set.body).to.include({
      device_id: d.deviceId,
      name: 'work laptop',
      has_address: true,
      current: true,
    });
    const row = await t.listener.deps.db('devices').where({ id: d.deviceId }).first();
    expect(row.user_address).to.equal('https://push.example.com/hook?x=1');
    for (const user_address of [
      'ftp://example.com/',
      'javascript:alert(1)',
      'not a url',
      'file:///etc/passwd',
      42,
    ]) {
      const bad = await t.call('PATCH', '/api/devices/current', { token: d.token, body: { user_address } });
      expect(bad.status, String(user_address)).to.equal(400);
      expect(JSON.stringify(bad.body.details)).to.contain('body.user_address');
    }
    expect(
      (await t.call('PATCH', '/api/devices/current', { token: d.token, body: { name: '' } })).status,
    ).to.equal(400);
    const cleared = await t.call('PATCH', '/api/devices/current', {
      token: d.token,
      body: { user_address: null },
    });
    expect(cleared.body).to.include({ has_address: false, name: 'work laptop' });
    expect((await t.listener.deps.db('devices').where({ id: d.deviceId }).first()).user_address).to.be.null;
  });

  it('when deleting one of my devices, then it, its session and its inbox are gone', async () => {
    const [a1, a2] = await person(t.call, 2);
    const [b] = await person(t.call, 1);
    if (!a1 || !a2 || !b) throw new Error('setup');
    const sent = await t.call('POST', '/api/messages', {
      token: b.token,
      body: { to: a1.username, envelopes: envelopesFor(b, [keyOf(a1), keyOf(a2)], 'x') },
    });
    expect(sent.status).to.equal(201);
    const del = await t.call('DELETE', `/api/devices/${a2.deviceId}`, { token: a1.token });
    expect(del.status).to.equal(204);
    expect((await t.call('GET', '/api/users/me', { token: a2.token })).status).to.equal(401);
    expect(await t.listener.deps.db('inbox').where({ device_id: a2.deviceId })).to.deep.equal([]);
    const list = await t.call('GET', '/api/devices', { token: a1.token });
    expect(list.body.devices.map((d: { device_id: string }) => d.device_id)).to.deep.equal([a1.deviceId]);
    expect((await t.call('DELETE', `/api/devices/${a2.deviceId}`, { token: a1.token })).status).to.equal(404);
    // deleting the calling device signs it out
    expect((await t.call('DELETE', `/api/devices/${a1.deviceId}`, { token: a1.token })).status).to.equal(204);
    expect((await t.call('GET', '/api/devices', { token: a1.token })).status).to.equal(401);
  });

  it("when deleting another user's device, then 404 and it stays", async () => {
    const [mine] = await person(t.call, 1);
    const [theirs] = await person(t.call, 1);
    if (!mine || !theirs) throw new Error('setup');
    const res = await t.call('DELETE', `/api/devices/${theirs.deviceId}`, { token: mine.token });
    expect(res.status).to.equal(404);
    expect(res.body.error).to.equal('not_found');
    expect((await t.call('GET', '/api/devices', { token: theirs.token })).body.devices).to.have.length(1);
    // Ids are opaque: one of another shape names nothing, like an unknown one.
    expect((await t.call('DELETE', '/api/devices/not-a-uuid', { token: mine.token })).status).to.equal(404);
  });
});
