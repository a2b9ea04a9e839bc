import { expect } from 'chai';
import { outboxEvents } from '../helpers/db-state.ts';
import { useListener } from '../helpers/listener.ts';
import { type Device, envelopesFor, keyOf, person, uniqueName } from '../helpers/people.ts';

/** Storage a sender can make others hold: a device's undelivered events are bounded. */
describe('inbox quota (INBOX_MAX_EVENTS)', () => {
  const t = useListener({ INBOX_MAX_EVENTS: '3' });

  const send = (from: Device, to: Device, text: string, extra: Record<string, unknown> = {}) =>
    t.call('POST', '/api/messages', {
      token: from.token,
      body: { to: to.username, envelopes: envelopesFor(from, [keyOf(to)], text), ...extra },
    });
  const pending = async (d: Device) =>
    Number((await t.listener.deps.db('inbox').where({ device_id: d.deviceId }).count())[0]?.count);
  const sentBy = async (d: Device) =>
    Number((await t.listener.deps.db('messages').where({ sender_device_id: d.deviceId }).count())[0]?.count);

  it('when a device holds the limit of undelivered events, then a new message to it is 429 recipient_inbox_full and nothing is stored, while others are unaffected', async () => {
    const [alice] = await person(t.call);
    const [bob] = await person(t.call);
    const [carol] = await person(t.call);
    if (!alice || !bob || !carol) throw new Error('setup');
    for (let i = 0; i < 3; i++) expect((await send(alice, bob, `m${i}`)).status).to.equal(201);
    const [refused, toCarol] = await Promise.all([
      send(alice, bob, 'one too many', { client_message_id: 'c-full' }),
      send(alice, carol, 'batch-mate'),
    ]);
    expect(refused.status).to.equal(429);
    expect(refused.body.error).to.equal('recipient_inbox_full');
    expect(refused.headers['retry-after']).to.be.a('string');
    expect(toCarol.status).to.equal(201);
    expect(await pending(bob)).to.equal(3);
    expect(await sentBy(alice)).to.equal(4);
    // Once bob catches up, the same client_message_id is a fresh send (it was never stored).
    const page = await t.call('GET', '/api/messages', { token: bob.token });
    await t.call('POST', '/api/messages/ack', { token: bob.token, body: { up_to: page.body.next_after } });
    const again = await send(alice, bob, 'now there is room', { client_message_id: 'c-full' });
    expect(again.status).to.equal(201);
  });

  it('when a group member device is full, then a group message is refused as a whole', async () => {
    const [alice] = await person(t.call);
    const [bob] = await person(t.call);
    if (!alice || !bob) throw new Error('setup');
    const group = await t.call('POST', '/api/groups', {
      token: alice.token,
      body: { name: uniqueName('g'), members: [bob.username] },
    });
    expect(group.status).to.equal(201);
    // group.updated is one event; two messages fill bob's three.
    for (let i = 0; i < 2; i++) expect((await send(alice, bob, `m${i}`)).status).to.equal(201);
    const res = await t.call('POST', '/api/messages', {
      token: alice.token,
      body: { group_id: group.body.group_id, envelopes: envelopesFor(alice, [keyOf(bob)], 'to the group') },
    });
    expect(res.status).to.equal(429);
    expect(res.body.error).to.equal('recipient_inbox_full');
    expect(await pending(bob)).to.equal(3);
  });

  it('when a message references files but has no envelope, then 400 (nothing could ever read them)', async () => {
    const [alice] = await person(t.call);
    const [bob] = await person(t.call);
    if (!alice || !bob) throw new Error('setup');
    const res = await t.call('POST', '/api/messages', {
      token: alice.token,
      body: { to: bob.username, envelopes: [], file_ids: ['0190f5c2-0000-7000-8000-000000000000'] },
    });
    expect(res.status).to.equal(400);
    expect(res.body.details.map((d: { field: string }) => d.field)).to.include('body.envelopes');
  });
});

/** A push address change re-queues what is pending; repeating it must not multiply pushes. */
describe('re-queue on a new push address', () => {
  const t = useListener({ REQUEUE_MAX_EVENTS: '2' });

  const queued = (d: Device) => outboxEvents(t.listener.deps.db, [d.deviceId]);

  it('when the same address is set again, then nothing is re-queued; a new one queues at most REQUEUE_MAX_EVENTS', async () => {
    const [alice] = await person(t.call);
    const [bob] = await person(t.call);
    if (!alice || !bob) throw new Error('setup');
    for (let i = 0; i < 5; i++) {
      const res = await t.call('POST', '/api/messages', {
        token: alice.token,
        body: { to: bob.username, envelopes: envelopesFor(alice, [keyOf(bob)], `m${i}`) },
      });
      expect(res.status).to.equal(201);
    }
    // No relay in this listener: every outbox row stays, so they can be counted.
    const before = await queued(bob);
    const set = (url: string) =>
      t.call('PATCH', '/api/devices/current', { token: bob.token, body: { user_address: url } });
    expect((await set('https://push.example/a')).status).to.equal(200);
    expect(await queued(bob)).to.equal(before + 2);
    expect((await set('https://push.example/a')).status).to.equal(200);
    expect((await set('https://push.example/a')).status).to.equal(200);
    expect(await queued(bob)).to.equal(before + 2);
    expect((await set('https://push.example/b')).status).to.equal(200);
    expect(await queued(bob)).to.equal(before + 4);
  });
});

/** File bytes a user can make the server keep (FILE_STORAGE_PER_USER_BYTES). */
describe('file storage quota', () => {
  const t = useListener({ FILE_STORAGE_PER_USER_BYTES: '1000', FILE_MAX_BYTES: '600' });
  const upload = (d: Device, n: number) =>
    t.call('POST', '/api/files', {
      token: d.token,
      raw: Buffer.alloc(n, 7),
      headers: { 'content-type': 'application/octet-stream' },
    });
  const files = async (d: Device) =>
    Number((await t.listener.deps.db('files').where({ uploader_id: d.userId }).count())[0]?.count);

  it('when an upload would pass the quota, then 413 storage_quota_exceeded and nothing is stored; another user is unaffected', async () => {
    const [alice] = await person(t.call);
    const [bob] = await person(t.call);
    if (!alice || !bob) throw new Error('setup');
    expect((await upload(alice, 600)).status).to.equal(201);
    const refused = await upload(alice, 500);
    expect(refused.status).to.equal(413);
    expect(refused.body.error).to.equal('storage_quota_exceeded');
    expect(await files(alice)).to.equal(1);
    expect((await upload(alice, 400)).status).to.equal(201);
    expect((await upload(bob, 600)).status).to.equal(201);
  });
});
