import { expect } from 'chai';
import { useListener } from '../helpers/listener.ts';
import { type Device, envelopesFor, keyOf, login, person, register, uniqueName } from '../helpers/people.ts';

const phone = () => `+1${String(Math.floor(Math.random() * 1e10)).padStart(10, '0')}`;

describe('users: register, directory, profile, deletion', () => {
  const t = useListener();

  describe('register', () => {
    it('when a mixed-case name registers, then it is folded to lower case and logs in either way', async () => {
      const name = uniqueName('Alice').replace('alice', 'Alice');
      const res = await t.call('POST', '/api/users', { body: { username: name, password: 'password1' } });
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      expect(res.body.username).to.equal(name.toLowerCase());
      expect(res.body.user_id).to.be.a('string');
      const again = await t.call('POST', '/api/users', {
        body: { username: name.toLowerCase(), password: 'password1' },
      });
      expect(again.status).to.equal(409);
      expect(again.body.error).to.equal('username_taken');
      await login(t.call, { username: name.toUpperCase(), password: 'password1' });
    });

    it('when the username breaks the rules, then 400 names the field and nothing is stored', async () => {
      for (const username of ['ab', 'x'.repeat(33), 'has space', 'bad!char', 'émile', '', 42, null]) {
        const res = await t.call('POST', '/api/users', { body: { username, password: 'password1' } });
        expect(res.status, String(username)).to.equal(400);
        expect(res.body.error).to.equal('invalid_request');
        expect(JSON.stringify(res.body.details)).to.contain('body.username');
      }
      for (const username of ['abc', 'a.b-c_d', 'x'.repeat(32)]) {
        const name = `${username.slice(0, 20)}${Math.random().toString(36).slice(2, 8)}`.slice(0, 32);
        const res = await t.call('POST', '/api/users', { body: { username: name, password: 'password1' } });
        expect(res.status, name).to.equal(201);
      }
    });

    it('when the password is shorter than 8 or longer than 256, then 400', async () => {
      for (const password of ['1234567', 'x'.repeat(257)]) {
        const username = uniqueName();
        const res = await t.call('POST', '/api/users', { body: { username, password } });
        expect(res.status).to.equal(400);
        expect(JSON.stringify(res.body.details)).to.contain('body.password');
        expect(
          (await t.call('POST', '/api/users', { body: { username, password: 'password1' } })).status,
        ).to.equal(201);
      }
      const edge = await t.call('POST', '/api/users', {
        body: { username: uniqueName(), password: 'x'.repeat(256) },
      });
      expect(edge.status).to.equal(201);
    });

    it('when phone numbers are given, then E.164 is required and a taken one is 409 phone_number_taken', async () => {
      for (const phone_number of ['5551234', '+0123456', '+1 555 123', '+1234567890123456', 'abc']) {
        const res = await t.call('POST', '/api/users', {
          body: { username: uniqueName(), password: 'password1', phone_number },
        });
        expect(res.status, phone_number).to.equal(400);
      }
      const p = phone();
      const first = await t.call('POST', '/api/users', {
        body: { username: uniqueName(), password: 'password1', phone_number: p },
      });
      expect(first.status).to.equal(201);
      const name = uniqueName();
      const taken = await t.call('POST', '/api/users', {
        body: { username: name, password: 'password1', phone_number: p },
      });
      expect(taken.status).to.equal(409);
      expect(taken.body.error).to.equal('phone_number_taken');
      // the losing registration left nothing behind
      expect(
        (await t.call('POST', '/api/users', { body: { username: name, password: 'password1' } })).status,
      ).to.equal(201);
    });
  });

  describe('directory', () => {
    it('when looking a user up by path or ?username=, then both give the same devices (any case, trailing slash)', async () => {
      const [me] = await person(t.call, 1);
      const [b1, b2] = await person(t.call, 2);
      if (!me || !b1 || !b2) throw new Error('setup');
      const want = [keyOf(b1), keyOf(b2)];
      const paths = [
        `/api/users/${b1.username}`,
        `/api/users/${b1.username.toUpperCase()}`,
        `/api/users/${b1.username}/`,
        `/api/users?username=${b1.username}`,
        `/api/users/?username=${b1.username}`,
      ];
      for (const path of paths) {
        const res = await t.call('GET', path, { token: me.token });
        expect(res.status, path).to.equal(200);
        expect(res.body).to.deep.equal({
          user_id: b1.userId,
          username: b1.username,
          display_name: null,
          devices: want,
        });
      }
    });

    it('when the user does not exist or no username is given, then 404 / 400', async () => {
      const [me] = (await person(t.call, 1)) as [Device];
      const missing = await t.call('GET', `/api/users/${uniqueName()}`, { token: me.token });
      expect(missing.status).to.equal(404);
      expect(missing.body.error).to.equal('not_found');
      expect(
        (await t.call('GET', `/api/users?username=${uniqueName()}`, { token: me.token })).status,
      ).to.equal(404);
      expect((await t.call('GET', '/api/users', { token: me.token })).status).to.equal(400);
      expect((await t.call('GET', `/api/users/${uniqueName()}`)).status).to.equal(401);
    });
  });

  describe('me', () => {
    it('when reading and patching me, then display name and phone number show and can change', async () => {
      const username = uniqueName();
      const p = phone();
      const reg = await t.call('POST', '/api/users', {
        body: { username, password: 'password1', phone_number: p, display_name: 'Al' },
      });
      expect(reg.status).to.equal(201);
      const d = await login(t.call, { username, password: 'password1' });
      const me = await t.call('GET', '/api/users/me', { token: d.token });
      expect(me.body).to.deep.equal({ user_id: d.userId, username, display_name: 'Al', phone_number: p });
      const patched = await t.call('PATCH', '/api/users/me/', {
        token: d.token,
        body: { display_name: '  Alice  ' },
      });
      expect(patched.status).to.equal(200);
      expect(patched.body.display_name).to.equal('Alice');
      const dir = await t.call('GET', `/api/users/${username}`, { token: d.token });
      expect(dir.body.display_name).to.equal('Alice');
      expect(
        (await t.call('PATCH', '/api/users/me', { token: d.token, body: { display_name: null } })).body
          .display_name,
      ).to.be.null;
      expect(
        (await t.call('PATCH', '/api/users/me', { token: d.token, body: { display_name: '' } })).status,
      ).to.equal(400);
      expect(
        (await t.call('PATCH', '/api/users/me', { token: d.token, body: { username: 'x' } })).status,
      ).to.equal(400);
    });

    it('when changing the password, then current_password is required, a wrong one is 403 and other sessions end', async () => {
      const [d1, d2] = await person(t.call, 2);
      if (!d1 || !d2) throw new Error('setup');
      const missing = await t.call('PATCH', '/api/users/me', {
        token: d1.token,
        body: { password: 'new password' },
      });
      expect(missing.status).to.equal(400);
      const wrong = await t.call('PATCH', '/api/users/me', {
        token: d1.token,
        body: { password: 'new password', current_password: 'not it at all' },
      });
      expect(wrong.status).to.equal(403);
      expect(wrong.body.error).to.equal('wrong_password');
      expect((await t.call('GET', '/api/users/me', { token: d2.token })).status).to.equal(200);
      await login(t.call, d1); // old password still works
      const ok = await t.call('PATCH', '/api/users/me', {
        token: d1.token,
        body: { password: 'new password', current_password: d1.password },
      });
      expect(ok.status).to.equal(200);
      expect((await t.call('GET', '/api/users/me', { token: d1.token })).status).to.equal(200);
      expect((await t.call('GET', '/api/users/me', { token: d2.token })).status).to.equal(401);
      const old = await t.call('POST', '/api/login', {
        body: { username: d1.username, password: d1.password, public_key: keyOf(d1).public_key },
      });
      expect(old.status).to.equal(401);
      await login(t.call, { username: d1.username, password: 'new password' });
    });

    it('when deleting me, then a wrong password is 403 and the right one removes sessions, devices and inboxes', async () => {
      const [a1, a2] = await person(t.call, 2);
      const [b1] = await person(t.call, 1);
      if (!a1 || !a2 || !b1) throw new Error('setup');
      const sent = await t.call('POST', '/api/messages', {
        token: b1.token,
        body: { to: a1.username, envelopes: envelopesFor(b1, [keyOf(a1), keyOf(a2)], 'bye') },
      });
      expect(sent.status).to.equal(201);
      const wrong = await t.call('DELETE', '/api/users/me', {
        token: a1.token,
        body: { password: 'wrong password' },
      });
      expect(wrong.status).to.equal(403);
      expect(wrong.body.error).to.equal('wrong_password');
      expect((await t.call('DELETE', '/api/users/me', { token: a1.token })).status).to.equal(400);
      const db = t.listener.deps.db;
      expect(
        Number((await db('inbox').whereIn('device_id', [a1.deviceId, a2.deviceId]).count())[0]?.count),
      ).to.equal(2);
      const del = await t.call('DELETE', '/api/users/me', {
        token: a1.token,
        body: { password: a1.password },
      });
      expect(del.status).to.equal(204);
      for (const d of [a1, a2])
        expect((await t.call('GET', '/api/users/me', { token: d.token })).status).to.equal(401);
      expect(await db('devices').where({ user_id: a1.userId })).to.deep.equal([]);
      expect(await db('sessions').where({ user_id: a1.userId })).to.deep.equal([]);
      expect(await db('inbox').whereIn('device_id', [a1.deviceId, a2.deviceId])).to.deep.equal([]);
      expect((await t.call('GET', `/api/users/${a1.username}`, { token: b1.token })).status).to.equal(404);
      const relogin = await t.call('POST', '/api/login', {
        body: { username: a1.username, password: a1.password, public_key: keyOf(a1).public_key },
      });
      expect(relogin.status).to.equal(401);
      // the name is free again
      await register(t.call, a1.username);
    });
  });
});
