import { expect } from 'chai';
import { useListener } from '../helpers/listener.ts';
import { type Device, person } from '../helpers/people.ts';

describe('groups: members per group, groups per user, membership changes per minute, paged lists', () => {
  const t = useListener({
    GROUP_MEMBERS_MAX: '4',
    GROUPS_PER_USER_MAX: '3',
    GROUP_CHANGES_PER_MINUTE: '3',
    DEVICES_PER_USER_MAX: '2',
  });
  const db = () => t.listener.deps.db;
  const one = async () => ((await person(t.call, 1)) as [Device])[0];
  const create = (owner: Device, members: string[], extra: Record<string, unknown> = {}) =>
    t.call('POST', '/api/groups', { token: owner.token, body: { name: 'g', members, ...extra } });
  const add = (actor: Device, groupId: string, username: string) =>
    t.call('POST', `/api/groups/${groupId}/members`, { token: actor.token, body: { username } });
  const remove = (actor: Device, groupId: string, userId: string) =>
    t.call('DELETE', `/api/groups/${groupId}/members/${userId}`, { token: actor.token });
  const inboxRows = async () => Number((await db()('inbox').count({ n: '*' }))[0]?.n);
  const groupsOfUser = async (userId: string) => db()('group_members').where({ user_id: userId });

  it('when a group would pass GROUP_MEMBERS_MAX, then 409 group_full on creation and on add, nothing stored', async () => {
    const [owner, a, b, c, d] = await Promise.all([one(), one(), one(), one(), one()]);
    const before = await db()('groups').count({ n: '*' });
    const tooMany = await create(owner, [a.username, b.username, c.username, d.username]);
    expect(tooMany.status).to.equal(409);
    expect(tooMany.body.error).to.equal('group_full');
    expect(await db()('groups').count({ n: '*' })).to.deep.equal(before);
    const ok = await create(owner, [a.username, b.username, c.username]);
    expect(ok.status).to.equal(201);
    const full = await add(owner, ok.body.group_id, d.username);
    expect(full.status).to.equal(409);
    expect(full.body.error).to.equal('group_full');
    expect(await groupsOfUser(d.userId)).to.deep.equal([]);
  });

  it('when a user is in GROUPS_PER_USER_MAX groups, then creating, being added and joining are 409 too_many_groups; others are unaffected', async () => {
    const [busy, owner, other] = await Promise.all([one(), one(), one()]);
    for (let i = 0; i < 3; i++) expect((await create(busy, [])).status).to.equal(201);
    const own = await create(busy, []);
    expect(own.status).to.equal(409);
    expect(own.body.error).to.equal('too_many_groups');
    const named = await create(owner, [busy.username]);
    expect(named.status).to.equal(409);
    expect(named.body.error).to.equal('too_many_groups');
    const g = await create(owner, [], { is_public: true });
    expect((await add(owner, g.body.group_id, busy.username)).body.error).to.equal('too_many_groups');
    expect((await add(busy, g.body.group_id, busy.username)).body.error).to.equal('too_many_groups');
    expect(await groupsOfUser(busy.userId)).to.have.length(3);
    expect((await add(owner, g.body.group_id, other.username)).status).to.equal(204);
  });

  it('when membership changes of one group pass GROUP_CHANGES_PER_MINUTE, then 429 with nothing stored; leaving and other groups still work', async () => {
    const [owner, a, b, c] = await Promise.all([one(), one(), one(), one()]);
    const g = (await create(owner, [a.username])).body.group_id as string;
    const other = (await create(owner, [])).body.group_id as string;
    expect((await remove(owner, g, a.userId)).status).to.equal(204); // 1
    expect((await add(owner, g, a.username)).status).to.equal(204); // 2
    expect((await add(owner, g, b.username)).status).to.equal(204); // 3
    const rows = await inboxRows();
    const res = await add(owner, g, c.username);
    expect(res.status).to.equal(429);
    expect(res.body.error).to.equal('rate_limited');
    expect(Number(res.headers['retry-after'])).to.be.within(1, 60);
    expect(await inboxRows(), 'no group.updated for a refused change').to.equal(rows);
    expect(await groupsOfUser(c.userId)).to.deep.equal([]);
    expect((await remove(owner, g, b.userId)).status, 'removing others counts too').to.equal(429);
    expect((await remove(b, g, b.userId)).status, 'leaving is never held back').to.equal(204);
    expect((await add(owner, other, c.username)).status, 'another group has its own budget').to.equal(204);
  });

  it('when a membership changes, then the events it creates are the devices of the members before and after it (the amplification bound)', async () => {
    const owner = ((await person(t.call, 2)) as Device[])[0] as Device;
    const a = ((await person(t.call, 2)) as Device[])[0] as Device;
    const b = ((await person(t.call, 2)) as Device[])[0] as Device;
    const g = (await create(owner, [a.username])).body.group_id as string;
    const rows = await inboxRows();
    expect((await add(owner, g, b.username)).status).to.equal(204);
    // 3 members × 2 devices: one group.updated each; at most GROUP_MEMBERS_MAX × DEVICES_PER_USER_MAX
    // (4 × 2 = 8) per change and GROUP_CHANGES_PER_MINUTE (3) changes a minute: 24 events per group-minute.
    const events = (await inboxRows()) - rows;
    expect(events).to.equal(6);
    const { GROUP_MEMBERS_MAX, DEVICES_PER_USER_MAX } = t.listener.deps.config;
    expect(events).to.be.at.most(GROUP_MEMBERS_MAX * DEVICES_PER_USER_MAX);
  });

  it('when a user lists their groups, then pages follow limit and cursor like the public search', async () => {
    const user = await one();
    for (const name of ['bravo', 'alpha', 'charlie'])
      await t.call('POST', '/api/groups', { token: user.token, body: { name, members: [] } });
    const first = await t.call('GET', '/api/groups?limit=2', { token: user.token });
    expect(first.status).to.equal(200);
    expect(first.body.groups.map((g: { name: string }) => g.name)).to.deep.equal(['alpha', 'bravo']);
    expect(first.body.next_cursor).to.be.a('string');
    const second = await t.call('GET', `/api/groups?limit=2&cursor=${first.body.next_cursor}`, {
      token: user.token,
    });
    expect(second.body.groups.map((g: { name: string }) => g.name)).to.deep.equal(['charlie']);
    expect(second.body.next_cursor).to.equal(null);
    expect((await t.call('GET', '/api/groups', { token: user.token })).body.groups).to.have.length(3);
    expect(
      (await t.call('GET', '/api/groups?q=a', { token: user.token })).status,
      '`q` is public search',
    ).to.equal(400);
    expect((await t.call('GET', '/api/groups?limit=101', { token: user.token })).status).to.equal(400);
  });
});
