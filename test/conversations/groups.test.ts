import { expect } from 'chai';
import { useListener } from '../helpers/listener.ts';
import { type Device, decrypt, envelopesFor, keyOf, person, uniqueName } from '../helpers/people.ts';
import { drain, groupTargets, ofType, pullAll } from './helpers.ts';

describe('groups', () => {
  const t = useListener();

  async function people(n: number, devices = 2): Promise<Device[][]> {
    const out: Device[][] = [];
    for (let i = 0; i < n; i++) out.push(await person(t.call, devices));
    return out;
  }

  async function createGroup(owner: Device, members: Device[], extra: Record<string, unknown> = {}) {
    const res = await t.call('POST', '/api/groups', {
      token: owner.token,
      body: { name: uniqueName('g'), members: members.map((m) => m.username), ...extra },
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    return res.body.group_id as string;
  }

  async function sendToGroup(from: Device, groupId: string, text: string) {
    const targets = await groupTargets(t.call, from, groupId);
    return t.call('POST', '/api/messages', {
      token: from.token,
      body: { group_id: groupId, envelopes: envelopesFor(from, targets, text) },
    });
  }

  it('when three users with two devices each form a group and one sends, then every other device decrypts it', async () => {
    const [[a1, a2], [b1, b2], [c1, c2]] = (await people(3)) as [Device[], Device[], Device[]];
    if (!a1 || !a2 || !b1 || !b2 || !c1 || !c2) throw new Error('setup');
    const groupId = await createGroup(a1, [b1, c1]);
    const all = [a1, a2, b1, b2, c1, c2];
    for (const d of all) {
      const updates = ofType(await drain(t.call, d), 'group.updated');
      expect(updates, d.username).to.have.length(1);
      expect(updates[0]).to.include({ group_id: groupId, message_id: null, nonce: null, ciphertext: null });
      expect(updates[0].from.device_id).to.equal(a1.deviceId);
    }
    const group = await t.call('GET', `/api/groups/${groupId}`, { token: c2.token });
    expect(group.body.owner_id).to.equal(a1.userId);
    expect(group.body.members.map((m: { user_id: string }) => m.user_id)).to.have.members([
      a1.userId,
      b1.userId,
      c1.userId,
    ]);

    const sent = await sendToGroup(b2, groupId, 'hello group');
    expect(sent.status, JSON.stringify(sent.body)).to.equal(201);
    for (const d of all.filter((x) => x !== b2)) {
      const [event, ...rest] = await drain(t.call, d);
      expect(rest, d.username).to.deep.equal([]);
      expect(event).to.include({ type: 'message', group_id: groupId, message_id: sent.body.message_id });
      expect(event.from.device_id).to.equal(b2.deviceId);
      expect(decrypt(d, event)).to.equal('hello group');
    }
    expect(await pullAll(t.call, b2)).to.deep.equal([]);
    expect((await t.call('GET', '/api/groups', { token: c1.token })).body.groups).to.deep.equal([
      { group_id: groupId, name: group.body.name, owner_id: a1.userId, is_public: false, member_count: 3 },
    ]);
  });

  it("when a group message misses a member's device, then 409 device_mismatch and nothing is delivered", async () => {
    const [[a1, a2], [b1, b2]] = (await people(2)) as [Device[], Device[]];
    if (!a1 || !a2 || !b1 || !b2) throw new Error('setup');
    const groupId = await createGroup(a1, [b1]);
    await drain(t.call, b1);
    const res = await t.call('POST', '/api/messages', {
      token: a1.token,
      body: { group_id: groupId, envelopes: envelopesFor(a1, [keyOf(b1)], 'x') },
    });
    expect(res.status).to.equal(409);
    expect(res.body.error).to.equal('device_mismatch');
    expect(res.body.missing_devices.map((d: { device_id: string }) => d.device_id)).to.have.members([
      b2.deviceId,
      a2.deviceId,
    ]);
    expect(await pullAll(t.call, b1)).to.deep.equal([]);
  });

  it('when the owner adds and removes a member, then every member device (the removed one too) gets group.updated and the removed member can neither read nor send', async () => {
    const [[a1, a2], [b1, b2], [c1, c2]] = (await people(3)) as [Device[], Device[], Device[]];
    if (!a1 || !a2 || !b1 || !b2 || !c1 || !c2) throw new Error('setup');
    const groupId = await createGroup(a1, [b1]);
    for (const d of [a1, a2, b1, b2]) await drain(t.call, d);

    const add = await t.call('POST', `/api/groups/${groupId}/members`, {
      token: a1.token,
      body: { username: c1.username },
    });
    expect(add.status, JSON.stringify(add.body)).to.equal(204);
    for (const d of [a1, a2, b1, b2, c1, c2]) {
      const events = await drain(t.call, d);
      expect(
        events.map((e) => e.type),
        d.username,
      ).to.deep.equal(['group.updated']);
    }
    // adding an existing member again changes nothing
    const again = await t.call('POST', `/api/groups/${groupId}/members`, {
      token: a1.token,
      body: { username: c1.username },
    });
    expect(again.status).to.equal(204);
    expect(await pullAll(t.call, b1)).to.deep.equal([]);

    const remove = await t.call('DELETE', `/api/groups/${groupId}/members/${b1.userId}`, { token: a1.token });
    expect(remove.status, JSON.stringify(remove.body)).to.equal(204);
    for (const d of [a1, a2, b1, b2, c1, c2]) {
      const events = await drain(t.call, d);
      expect(
        events.map((e) => e.type),
        d.username,
      ).to.deep.equal(['group.updated']);
      expect(events[0].group_id).to.equal(groupId);
    }
    expect((await t.call('GET', `/api/groups/${groupId}`, { token: b2.token })).status).to.equal(404);
    expect((await t.call('GET', '/api/groups', { token: b1.token })).body.groups).to.deep.equal([]);
    const members = await t.call('GET', `/api/groups/${groupId}`, { token: c1.token });
    const targets = members.body.members.flatMap((m: { devices: unknown[] }) => m.devices);
    const bSends = await t.call('POST', '/api/messages', {
      token: b1.token,
      body: { group_id: groupId, envelopes: envelopesFor(b1, targets, 'still here?') },
    });
    expect(bSends.status).to.equal(404);
    // and a member's next message is not encrypted for the removed member's devices
    const sent = await sendToGroup(c1, groupId, 'after');
    expect(sent.status, JSON.stringify(sent.body)).to.equal(201);
    expect(await pullAll(t.call, b1)).to.deep.equal([]);
    expect(decrypt(a2, (await drain(t.call, a2))[0])).to.equal('after');
  });

  it('when a member is removed while sending, then their message is either ordered before the removal or refused', async () => {
    const [[a1], [b1]] = (await people(2, 1)) as [Device[], Device[]];
    if (!a1 || !b1) throw new Error('setup');
    for (let round = 0; round < 8; round++) {
      const groupId = await createGroup(a1, [b1]);
      const targets = await groupTargets(t.call, b1, groupId);
      await drain(t.call, a1);
      const [sent, removed] = await Promise.all([
        t.call('POST', '/api/messages', {
          token: b1.token,
          body: { group_id: groupId, envelopes: envelopesFor(b1, targets, `round ${round}`) },
        }),
        t.call('DELETE', `/api/groups/${groupId}/members/${b1.userId}`, { token: a1.token }),
      ]);
      expect(removed.status).to.equal(204);
      expect([201, 404]).to.include(sent.status);
      const events = await drain(t.call, a1);
      const removal = events.find((e) => e.type === 'group.updated');
      const message = events.find((e) => e.type === 'message');
      if (sent.status === 201) expect(message.seq).to.be.below(removal.seq);
      else expect(message).to.equal(undefined);
    }
  });

  it('when the owner leaves, then the oldest remaining member owns the group, and when the last member leaves, the group is gone', async () => {
    const [[a1], [b1], [c1]] = (await people(3, 1)) as [Device[], Device[], Device[]];
    if (!a1 || !b1 || !c1) throw new Error('setup');
    const groupId = await createGroup(a1, [b1, c1]);
    expect(
      (await t.call('DELETE', `/api/groups/${groupId}/members/${a1.userId}`, { token: a1.token })).status,
    ).to.equal(204);
    expect(ofType(await drain(t.call, a1), 'group.updated')).to.have.length(2);
    const after = await t.call('GET', `/api/groups/${groupId}`, { token: c1.token });
    expect(after.body.owner_id).to.equal(b1.userId);
    // the new owner's powers
    expect(
      (await t.call('DELETE', `/api/groups/${groupId}/members/${c1.userId}`, { token: b1.token })).status,
    ).to.equal(204);
    expect(
      (await t.call('DELETE', `/api/groups/${groupId}/members/${b1.userId}`, { token: b1.token })).status,
    ).to.equal(204);
    expect((await t.call('GET', `/api/groups/${groupId}`, { token: b1.token })).status).to.equal(404);
    const gone = await t.listener.deps.db('groups').where({ id: groupId }).first();
    expect(gone).to.equal(undefined);
  });

  it('when a member deletes their account, then the others get group.updated, ownership moves on, and a group left empty is gone', async () => {
    const [[a1, a2], [b1], [c1]] = (await people(3)) as [Device[], Device[], Device[]];
    if (!a1 || !a2 || !b1 || !c1) throw new Error('setup');
    const shared = await createGroup(a1, [b1, c1]);
    const alone = await createGroup(a1, []);
    for (const d of [a1, a2, b1, c1]) await drain(t.call, d);
    const del = await t.call('DELETE', '/api/users/me', { token: a1.token, body: { password: a1.password } });
    expect(del.status, JSON.stringify(del.body)).to.equal(204);
    for (const d of [b1, c1]) {
      const events = await drain(t.call, d);
      expect(
        events.map((e) => [e.type, e.group_id]),
        d.username,
      ).to.deep.equal([['group.updated', shared]]);
      expect(events[0].from.user_id).to.equal(a1.userId);
    }
    const group = await t.call('GET', `/api/groups/${shared}`, { token: c1.token });
    expect(group.body.owner_id, 'the oldest remaining member').to.equal(b1.userId);
    expect(group.body.members.map((m: { user_id: string }) => m.user_id)).to.have.members([
      b1.userId,
      c1.userId,
    ]);
    expect(await t.listener.deps.db('groups').where({ id: alone }).first()).to.equal(undefined);
  });

  it('when a member who is not the owner or a stranger manages a private group, then 403 for the member and 404 for the stranger', async () => {
    const [[a1], [b1], [c1], [s1]] = (await people(4, 1)) as [Device[], Device[], Device[], Device[]];
    if (!a1 || !b1 || !c1 || !s1) throw new Error('setup');
    const groupId = await createGroup(a1, [b1]);
    const path = `/api/groups/${groupId}`;
    expect(
      (await t.call('POST', `${path}/members`, { token: b1.token, body: { username: c1.username } })).status,
    ).to.equal(403);
    expect((await t.call('DELETE', `${path}/members/${a1.userId}`, { token: b1.token })).status).to.equal(
      403,
    );
    expect((await t.call('GET', path, { token: s1.token })).status).to.equal(404);
    expect(
      (await t.call('POST', `${path}/members`, { token: s1.token, body: { username: s1.username } })).status,
    ).to.equal(404);
    expect((await t.call('DELETE', `${path}/members/${b1.userId}`, { token: s1.token })).status).to.equal(
      404,
    );
    const send = await t.call('POST', '/api/messages', {
      token: s1.token,
      body: { group_id: groupId, envelopes: [] },
    });
    expect(send.status).to.equal(404);
    expect(
      (await t.call('POST', `${path}/members`, { token: a1.token, body: { username: uniqueName() } })).status,
    ).to.equal(404);
    expect((await t.call('DELETE', `${path}/members/${c1.userId}`, { token: a1.token })).status).to.equal(
      404,
    );
    const group = await t.call('GET', path, { token: a1.token });
    expect(group.body.members).to.have.length(2);
  });

  it('when groups are created with bad input, then 400/404 and nothing is stored', async () => {
    const [[a1]] = (await people(1, 1)) as [Device[]];
    if (!a1) throw new Error('setup');
    const bad = [
      { name: '', members: [] },
      { name: 'x', members: 'nope' },
      { name: 'x', members: [], is_public: 'yes' },
      { name: 'x', members: [], extra: 1 },
      { name: 'x'.repeat(65), members: [] },
    ];
    for (const body of bad) {
      const res = await t.call('POST', '/api/groups', { token: a1.token, body });
      expect(res.status, JSON.stringify(body)).to.equal(400);
      expect(res.body.error).to.equal('invalid_request');
    }
    const unknown = await t.call('POST', '/api/groups', {
      token: a1.token,
      body: { name: 'x', members: [uniqueName()] },
    });
    expect(unknown.status).to.equal(404);
    expect((await t.call('GET', '/api/groups', { token: a1.token })).body.groups).to.deep.equal([]);
    expect(await pullAll(t.call, a1)).to.deep.equal([]);
    expect((await t.call('GET', '/api/groups/not-a-uuid', { token: a1.token })).status).to.equal(404);
    expect((await t.call('POST', '/api/groups', { body: { name: 'x', members: [] } })).status).to.equal(401);
  });

  it('when public groups are searched, then matches page by cursor, a stranger joins one and may then send', async () => {
    const [[a1], [s1, s2]] = (await people(2)) as [Device[], Device[]];
    if (!a1 || !s1 || !s2) throw new Error('setup');
    const tag = uniqueName('pub');
    const ids: string[] = [];
    for (const n of ['3', '1', '2']) {
      const res = await t.call('POST', '/api/groups', {
        token: a1.token,
        body: { name: `${tag} ${n}`, members: [], is_public: true },
      });
      ids.push(res.body.group_id);
    }
    await createGroup(a1, [], { name: `${tag} private` });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/api/groups?public=true&q=${tag.toUpperCase()}&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await t.call('GET', q, { token: s1.token });
      expect(page.status, JSON.stringify(page.body)).to.equal(200);
      expect(page.body.groups.length).to.be.at.most(2);
      seen.push(...page.body.groups.map((g: { name: string }) => g.name));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).to.deep.equal([`${tag} 1`, `${tag} 2`, `${tag} 3`]);

    for (const q of ['limit=0', 'limit=101', 'limit=x', 'cursor=garbage', `q=${'x'.repeat(65)}`]) {
      const res = await t.call('GET', `/api/groups?public=true&${q}`, { token: s1.token });
      expect(res.status, q).to.equal(400);
    }
    expect((await t.call('GET', '/api/groups?q=abc', { token: s1.token })).status).to.equal(400);

    const groupId = ids[1] as string;
    const peek = await t.call('GET', `/api/groups/${groupId}`, { token: s1.token });
    expect(peek.status).to.equal(200);
    expect(peek.body.is_public).to.equal(true);
    // a stranger may only add themself
    const other = await t.call('POST', `/api/groups/${groupId}/members`, {
      token: s1.token,
      body: { username: a1.username },
    });
    expect(other.status).to.equal(403);
    const join = await t.call('POST', `/api/groups/${groupId}/members`, {
      token: s1.token,
      body: { username: s1.username },
    });
    expect(join.status).to.equal(204);
    expect(ofType(await drain(t.call, a1), 'group.updated').at(-1).from.user_id).to.equal(s1.userId);
    const sent = await sendToGroup(s1, groupId, 'hi all');
    expect(sent.status, JSON.stringify(sent.body)).to.equal(201);
    expect(decrypt(a1, (await drain(t.call, a1))[0])).to.equal('hi all');
    const leave = await t.call('DELETE', `/api/groups/${groupId}/members/${s1.userId}`, { token: s2.token });
    expect(leave.status).to.equal(204);
  });
});
