import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { AnyRoute } from '../../listener/http/route.ts';
import { routes } from '../../listener/routes/index.ts';
import { dbState } from '../helpers/db-state.ts';
import { type Call, client } from '../helpers/http.ts';
import { startListener, type TestListener } from '../helpers/listener.ts';
import { type Device, envelopesFor, keyOf, login, person, register, uniqueName } from '../helpers/people.ts';

/** A concrete path for a route, its parameters pointing at the victim's own things where they can. */
function pathFor(r: AnyRoute, known: Record<string, string>): string {
  const shape = (
    r.params as unknown as { shape?: Record<string, { safeParse(v: unknown): { success: boolean } }> }
  )?.shape;
  return r.path.replace(/:(\w+)/g, (_, name: string) => {
    const candidates = [known[name], randomUUID(), 'someone_x', '1'].filter(
      (c): c is string => c !== undefined,
    );
    return encodeURIComponent(candidates.find((c) => shape?.[name]?.safeParse(c).success ?? true) ?? '1');
  });
}

describe('authorization matrix', () => {
  let listener: TestListener;
  let call: Call;
  let cells = 0;
  before(async () => {
    listener = await startListener();
    call = client(listener.url);
  });
  after(async () => {
    console.log(`      authorization matrix: ${cells} cells checked`);
    await listener.close();
  });

  it("when any authenticated route gets no, garbage, expired, revoked or a deleted user's token, then 401 and the victim's data is untouched", async () => {
    const [v1, v2] = (await person(call, 2)) as [Device, Device];
    const [s1] = (await person(call, 1)) as [Device];
    const sent = await call('POST', '/api/messages', {
      token: v1.token,
      body: { to: s1.username, envelopes: envelopesFor(v1, [keyOf(s1), keyOf(v2)], 'mine') },
    });
    expect(sent.status).to.equal(201);
    // expired: a session of the victim whose expiry has passed
    const expiring = await login(call, v1);
    await listener.deps
      .db('sessions')
      .where({ device_id: expiring.deviceId })
      .update({ expires_at: new Date(Date.now() - 1000) });
    // revoked: logged out; replaced: the device resumed elsewhere
    const loggedOut = await login(call, v1);
    expect((await call('POST', '/api/logout', { token: loggedOut.token })).status).to.equal(204);
    const replaced = await login(call, v1);
    await login(call, v1, { device_id: replaced.deviceId }, replaced.keys);
    // a deleted user's still-formed token
    const [gone] = (await person(call, 1)) as [Device];
    expect(
      (await call('DELETE', '/api/users/me', { token: gone.token, body: { password: gone.password } }))
        .status,
    ).to.equal(204);

    const tokens: Record<string, Record<string, string>> = {
      'no token': {},
      'garbage token': { authorization: `Bearer ${randomBytes(32).toString('base64url')}` },
      'malformed header': { authorization: `Token ${v1.token}` },
      'expired token': { authorization: `Bearer ${expiring.token}` },
      'logged-out token': { authorization: `Bearer ${loggedOut.token}` },
      'replaced token (device resumed)': { authorization: `Bearer ${replaced.token}` },
      "deleted user's token": { authorization: `Bearer ${gone.token}` },
    };
    const known = {
      device_id: v2.deviceId,
      user_id: v1.userId,
      username: v1.username,
      message_id: sent.body.message_id as string,
    };
    const guarded = routes.filter((r) => r.auth);
    expect(guarded.length).to.be.at.least(10);
    const before = await dbState(listener.deps.db, [v1.userId, s1.userId]);
    for (const r of guarded) {
      const path = pathFor(r, known);
      for (const [label, headers] of Object.entries(tokens)) {
        const hasBody = ['post', 'put', 'patch', 'delete'].includes(r.method);
        const res = await call(r.method.toUpperCase(), path, {
          headers,
          ...(hasBody && { body: { password: v1.password, up_to: 1e6 } }),
        });
        expect(
          res.status,
          `${label}: ${r.method.toUpperCase()} ${path} → ${JSON.stringify(res.body)}`,
        ).to.equal(401);
        expect(res.body.error).to.equal('unauthorized');
        cells++;
      }
    }
    expect(await dbState(listener.deps.db, [v1.userId, s1.userId])).to.deep.equal(before);
  });

  describe("another user's valid token", () => {
    let v1: Device;
    let v2: Device;
    let m: Device;
    let messageId: string;
    let before: Awaited<ReturnType<typeof dbState>>;
    beforeEach(async () => {
      [v1, v2] = (await person(call, 2)) as [Device, Device];
      m = await login(call, await register(call, uniqueName('mallory'), 'mallory password'));
      const sent = await call('POST', '/api/messages', {
        token: v1.token,
        body: { to: v1.username, envelopes: envelopesFor(v1, [keyOf(v2)], 'note to self') },
      });
      expect(sent.status).to.equal(201);
      messageId = sent.body.message_id;
      before = await dbState(listener.deps.db, [v1.userId]);
    });
    afterEach(async () => {
      expect(await dbState(listener.deps.db, [v1.userId]), "the victim's data").to.deep.equal(before);
    });

    const expectStatus = (res: { status: number; body: unknown }, allowed: number[], what: string) => {
      expect(allowed, `${what} → ${res.status} ${JSON.stringify(res.body)}`).to.include(res.status);
      cells++;
    };

    it("when pulling or acking, then only the caller's own inbox is read or changed", async () => {
      const pull = await call('GET', '/api/messages', { token: m.token });
      expectStatus(pull, [200], 'pull');
      expect(pull.body.events).to.deep.equal([]);
      expectStatus(
        await call('GET', `/api/messages?device_id=${v2.deviceId}`, { token: m.token }),
        [400],
        'pull naming a device',
      );
      expectStatus(
        await call('POST', '/api/messages/ack', { token: m.token, body: { up_to: 1e9 } }),
        [204],
        'ack',
      );
      expectStatus(
        await call('POST', '/api/messages/ack', {
          token: m.token,
          body: { up_to: 1e9, device_id: v2.deviceId },
        }),
        [400],
        'ack naming a device',
      );
    });

    it("when touching the victim's devices or account, then 404/403/400 and nothing changes", async () => {
      expectStatus(
        await call('DELETE', `/api/devices/${v2.deviceId}`, { token: m.token }),
        [404],
        'delete device',
      );
      expectStatus(
        await call('PATCH', '/api/devices/current', {
          token: m.token,
          body: { device_id: v2.deviceId, user_address: 'https://evil.example/' },
        }),
        [400],
        'patch a named device',
      );
      expectStatus(
        await call('PATCH', `/api/devices/${v2.deviceId}`, { token: m.token, body: { name: 'x' } }),
        [404, 405],
        'patch device by id',
      );
      expectStatus(
        await call('PATCH', '/api/users/me', {
          token: m.token,
          body: { user_id: v1.userId, display_name: 'pwned' },
        }),
        [400],
        'patch me naming a user',
      );
      expectStatus(
        await call('DELETE', '/api/users/me', { token: m.token, body: { password: v1.password } }),
        [403],
        "delete me with the victim's password",
      );
      expectStatus(
        await call('DELETE', `/api/users/${v1.username}`, { token: m.token }),
        [404, 405],
        'delete another user',
      );
      expectStatus(
        await call('POST', '/api/login', {
          body: {
            username: m.username,
            password: m.password,
            public_key: keyOf(v2).public_key,
            device_id: v2.deviceId,
          },
        }),
        [404],
        "resume the victim's device with own credentials",
      );
      expectStatus(
        await call('POST', '/api/login', {
          body: {
            username: v1.username,
            password: m.password,
            public_key: keyOf(v2).public_key,
            device_id: v2.deviceId,
          },
        }),
        [401],
        "resume the victim's device with a wrong password",
      );
      expectStatus(
        await call('POST', '/api/logout', { token: m.token, body: { device_id: v2.deviceId } }),
        [204],
        'logout (own)',
      );
      expectStatus(
        await call('GET', '/api/users/me', { token: v2.token }),
        [200],
        "victim's session after the attacker logged out",
      );
    });

    it("when editing, deleting or receipting the victim's message, then 404", async () => {
      const envelopes = envelopesFor(m, [keyOf(v1), keyOf(v2)], 'forged');
      expectStatus(
        await call('PUT', `/api/messages/${messageId}`, { token: m.token, body: { envelopes } }),
        [404],
        'edit',
      );
      expectStatus(await call('DELETE', `/api/messages/${messageId}`, { token: m.token }), [404], 'delete');
      expectStatus(
        await call('POST', `/api/messages/${messageId}/receipts`, { token: m.token, body: { type: 'read' } }),
        [404],
        'receipt for a message not received',
      );
    });

    it('when a body names a sender, then 400: the sender is always the authenticated device', async () => {
      const base = { to: v1.username, envelopes: envelopesFor(m, [keyOf(v1), keyOf(v2)], 'spoof') };
      for (const field of [
        'from',
        'sender',
        'sender_user_id',
        'sender_device_id',
        'user_id',
        'device_id',
        'username',
      ]) {
        const value = field === 'from' ? { user_id: v1.userId, device_id: v1.deviceId } : v1.deviceId;
        const res = await call('POST', '/api/messages', {
          token: m.token,
          body: { ...base, [field]: value },
        });
        expectStatus(res, [400], `send with ${field}`);
      }
      const honest = await call('POST', '/api/messages', { token: m.token, body: base });
      expectStatus(honest, [201], 'honest send');
      const pull = await call('GET', '/api/messages', { token: v2.token });
      const event = pull.body.events.find(
        (e: { message_id: string }) => e.message_id === honest.body.message_id,
      );
      expect(event.from).to.deep.equal({
        user_id: m.userId,
        username: m.username,
        device_id: m.deviceId,
        public_key: keyOf(m).public_key,
      });
      // the honest send is the only change: take it back out of the victim's snapshot
      await listener.deps
        .db('inbox')
        .whereIn('device_id', [v1.deviceId, v2.deviceId])
        .andWhere({ message_id: honest.body.message_id })
        .delete();
      await listener.deps.db('devices').whereIn('id', [v1.deviceId, v2.deviceId]).decrement('last_seq', 1);
    });

    it("when reusing the victim's client_message_id, then the attacker gets a message of their own, not the victim's", async () => {
      const mine = await call('POST', '/api/messages', {
        token: v1.token,
        body: {
          to: m.username,
          client_message_id: 'shared-id',
          envelopes: envelopesFor(v1, [keyOf(m), keyOf(v2)], 'v'),
        },
      });
      expectStatus(mine, [201], 'victim send');
      const theirs = await call('POST', '/api/messages', {
        token: m.token,
        body: { to: m.username, client_message_id: 'shared-id', envelopes: [] },
      });
      expectStatus(theirs, [201], 'attacker send with the same client id');
      expect(theirs.body.message_id).to.not.equal(mine.body.message_id);
      before = await dbState(listener.deps.db, [v1.userId]);
    });

    it('when reading the directory, then only public keys are exposed, never phone numbers or hashes', async () => {
      const dir = await call('GET', `/api/users/${v1.username}`, { token: m.token });
      expectStatus(dir, [200], 'directory');
      expect(dir.body).to.have.keys(['user_id', 'username', 'display_name', 'devices']);
      for (const d of dir.body.devices) expect(d).to.have.keys(['device_id', 'public_key']);
    });
  });
});
