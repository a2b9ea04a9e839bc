import { expect } from 'chai';
import { outboxEvents } from '../helpers/db-state.ts';
import { useListener } from '../helpers/listener.ts';
import { type Device, envelopesFor, keyOf, login, register } from '../helpers/people.ts';

/**
 * Events (inbox rows) and pushes (outbox rows) one request creates, for the requests of the group
 * and account routes that fan out, against the bound docs/API.md (Limits and quotas) gives for
 * each. Every device here has a push address, so each event is also one push.
 */
describe('amplification: events and pushes per fan-out request stay within their documented bound', () => {
  const t = useListener({ GROUP_MEMBERS_MAX: '4', DEVICES_PER_USER_MAX: '2', GROUPS_PER_USER_MAX: '3' });
  const db = () => t.listener.deps.db;
  const cfg = () => t.listener.deps.config;
  /** Inbox rows or outbox events, of the given devices only when `devices` is given. */
  const count = async (table: 'inbox' | 'outbox', devices?: Device[]) => {
    if (table === 'outbox')
      return outboxEvents(
        db(),
        devices?.map((d) => d.deviceId),
      );
    const q = db()(table).count({ n: '*' });
    if (devices)
      q.whereIn(
        'device_id',
        devices.map((d) => d.deviceId),
      );
    return Number((await q)[0]?.n);
  };
  /** A user with DEVICES_PER_USER_MAX devices, each with a push address. */
  const member = async () => {
    const user = await register(t.call);
    const devices: Device[] = [];
    for (let i = 0; i < cfg().DEVICES_PER_USER_MAX; i++)
      devices.push(await login(t.call, user, { user_address: `http://127.0.0.1:9/push/${i}` }));
    return devices;
  };
  /** What `request` added: [events, pushes] (for `devices` only, when given). */
  const measure = async (request: () => Promise<{ status: number }>, status: number, devices?: Device[]) => {
    const [inbox, outbox] = [await count('inbox', devices), await count('outbox', devices)];
    expect((await request()).status).to.equal(status);
    return [(await count('inbox', devices)) - inbox, (await count('outbox', devices)) - outbox];
  };
  const createGroup = (owner: Device, members: Device[]) =>
    t.call('POST', '/api/groups', {
      token: owner.token,
      body: { name: 'amp', members: members.map((m) => m.username) },
    });

  it('when a full group is created, then one event per member device: at most GROUP_MEMBERS_MAX × DEVICES_PER_USER_MAX', async () => {
    const people = await Promise.all(Array.from({ length: cfg().GROUP_MEMBERS_MAX }, member));
    const [owner, ...others] = people.map((p) => p[0] as Device) as [Device, ...Device[]];
    const [events, pushes] = await measure(() => createGroup(owner, others), 201);
    const bound = cfg().GROUP_MEMBERS_MAX * cfg().DEVICES_PER_USER_MAX;
    expect(events).to.equal(bound);
    expect(pushes).to.equal(events);
  });

  it('when a member is added, then the devices of the members before and after: the same bound, GROUP_CHANGES_PER_MINUTE times a minute', async () => {
    const [owner, a, b] = [await member(), await member(), await member()];
    const g = (await createGroup(owner[0] as Device, [a[0] as Device])).body.group_id;
    const [events, pushes] = await measure(
      () =>
        t.call('POST', `/api/groups/${g}/members`, {
          token: (owner[0] as Device).token,
          body: { username: (b[0] as Device).username },
        }),
      204,
    );
    expect(events).to.equal(3 * cfg().DEVICES_PER_USER_MAX);
    expect(events).to.be.at.most(cfg().GROUP_MEMBERS_MAX * cfg().DEVICES_PER_USER_MAX);
    expect(pushes).to.equal(events);
  });

  it('when a group message is deleted, then every member device but the acting one; a receipt, the devices of the sender', async () => {
    const [owner, a, b] = [await member(), await member(), await member()];
    const from = owner[0] as Device;
    const g = (await createGroup(from, [a[0] as Device, b[0] as Device])).body.group_id;
    const targets = [...owner.slice(1), ...a, ...b].map(keyOf);
    const sent = await t.call('POST', '/api/messages', {
      token: from.token,
      body: { group_id: g, envelopes: envelopesFor(from, targets, 'hi') },
    });
    expect(sent.status).to.equal(201);
    const [receipts, receiptPushes] = await measure(
      () =>
        t.call('POST', `/api/messages/${sent.body.message_id}/receipts`, {
          token: (a[0] as Device).token,
          body: { type: 'read' },
        }),
      204,
    );
    expect(receipts).to.equal(cfg().DEVICES_PER_USER_MAX);
    expect(receiptPushes).to.equal(receipts);
    // The delete also drops the undelivered copies, so count pushes (outbox rows) for the event.
    const [, pushes] = await measure(
      () => t.call('DELETE', `/api/messages/${sent.body.message_id}`, { token: from.token }),
      204,
    );
    const events = await db()('inbox')
      .where({ message_id: sent.body.message_id, type: 'message.deleted' })
      .count({ n: '*' });
    expect(Number(events[0]?.n)).to.equal(pushes);
    expect(pushes).to.equal(3 * cfg().DEVICES_PER_USER_MAX - 1);
    expect(pushes).to.be.at.most(cfg().GROUP_MEMBERS_MAX * cfg().DEVICES_PER_USER_MAX - 1);
  });

  it('when an account in several groups is deleted, then the remaining member devices of each: at most GROUPS_PER_USER_MAX × (GROUP_MEMBERS_MAX − 1) × DEVICES_PER_USER_MAX', async () => {
    const [leaver, a, b] = [await member(), await member(), await member()];
    const gone = leaver[0] as Device;
    await createGroup(gone, [a[0] as Device, b[0] as Device]);
    await createGroup(a[0] as Device, [gone, b[0] as Device]);
    // The leaver's own inbox goes with the account: count the remaining members' devices.
    const [events, pushes] = await measure(
      () => t.call('DELETE', '/api/users/me', { token: gone.token, body: { password: gone.password } }),
      204,
      [...a, ...b],
    );
    // Two groups, each with two remaining members of DEVICES_PER_USER_MAX devices.
    expect(events).to.equal(2 * 2 * cfg().DEVICES_PER_USER_MAX);
    const { GROUPS_PER_USER_MAX, GROUP_MEMBERS_MAX, DEVICES_PER_USER_MAX } = cfg();
    expect(events).to.be.at.most(GROUPS_PER_USER_MAX * (GROUP_MEMBERS_MAX - 1) * DEVICES_PER_USER_MAX);
    expect(pushes).to.equal(events);
  });
});
