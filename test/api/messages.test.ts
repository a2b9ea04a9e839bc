import { expect } from 'chai';
import { useListener } from '../helpers/listener.ts';
import { type Device, decrypt, envelopesFor, keyOf, person, uniqueName } from '../helpers/people.ts';

describe('messages: send, pull, ack', () => {
  const t = useListener();

  const inboxCount = async (devices: Device[]) =>
    Number(
      (
        await t.listener.deps
          .db('inbox')
          .whereIn(
            'device_id',
            devices.map((d) => d.deviceId),
          )
          .count()
      )[0]?.count,
    );
  const messageCount = async (d: Device) =>
    Number((await t.listener.deps.db('messages').where({ sender_device_id: d.deviceId }).count())[0]?.count);

  async function pullAll(d: Device, limit = 100) {
    const events = [];
    let after = 0;
    for (;;) {
      const res = await t.call('GET', `/api/messages?after=${after}&limit=${limit}`, { token: d.token });
      expect(res.status).to.equal(200);
      events.push(...res.body.events);
      after = res.body.next_after;
      if (!res.body.has_more) return { events, after };
    }
  }

  it('when three users with several devices talk, then every device decrypts what was meant for it, in order', async () => {
    const alice = await person(t.call, 3);
    const bob = await person(t.call, 2);
    const carol = await person(t.call, 2);
    const [a1] = alice;
    const [b1] = bob;
    const [c1] = carol;
    if (!a1 || !b1 || !c1) throw new Error('setup');
    const send = async (from: Device, to: Device[], text: string) => {
      const dir = await t.call('GET', `/api/users/${to[0]?.username}`, { token: from.token });
      const own = (
        await t.call('GET', `/api/users/${from.username}`, { token: from.token })
      ).body.devices.filter((d: { device_id: string }) => d.device_id !== from.deviceId);
      const targets = to[0]?.userId === from.userId ? own : [...dir.body.devices, ...own];
      const res = await t.call('POST', '/api/messages', {
        token: from.token,
        body: { to: to[0]?.username, envelopes: envelopesFor(from, targets, text) },
      });
      expect(res.status, JSON.stringify(res.body)).to.equal(201);
      expect(res.body.message_id).to.be.a('string');
      expect(Date.parse(res.body.sent_at)).to.be.closeTo(Date.now(), 60_000);
      return res.body.message_id as string;
    };
    const m1 = await send(a1, bob, 'a→b');
    const m2 = await send(b1, carol, 'b→c');
    const m3 = await send(c1, alice, 'c→a');
    const m4 = await send(a1, alice, 'note to self');
    const expected = new Map<Device, [string, string][]>([
      [
        alice[1] as Device,
        [
          [m1, 'a→b'],
          [m3, 'c→a'],
          [m4, 'note to self'],
        ],
      ],
      [
        alice[2] as Device,
        [
          [m1, 'a→b'],
          [m3, 'c→a'],
          [m4, 'note to self'],
        ],
      ],
      [a1, [[m3, 'c→a']]],
      [b1, [[m1, 'a→b']]],
      [
        bob[1] as Device,
        [
          [m1, 'a→b'],
          [m2, 'b→c'],
        ],
      ],
      [c1, [[m2, 'b→c']]],
      [
        carol[1] as Device,
        [
          [m2, 'b→c'],
          [m3, 'c→a'],
        ],
      ],
    ]);
    for (const [d, want] of expected) {
      const { events, after } = await pullAll(d);
      expect(events.map((e) => [e.message_id, decrypt(d, e)])).to.deep.equal(want);
      expect(events.map((e) => e.seq)).to.deep.equal(want.map((_, i) => i + 1));
      for (const e of events) {
        expect(e).to.include({ type: 'message', group_id: null });
        expect(e.id).to.be.a('string');
        expect(e.file_ids).to.deep.equal([]);
        expect(e.from).to.have.keys(['user_id', 'username', 'device_id', 'public_key']);
      }
      expect(events.map((e) => e.from.device_id).every((id) => id !== d.deviceId)).to.equal(true);
      expect(
        (await t.call('POST', '/api/messages/ack', { token: d.token, body: { up_to: after } })).status,
      ).to.equal(204);
      expect((await t.call('GET', '/api/messages', { token: d.token })).body).to.deep.equal({
        events: [],
        next_after: 0,
        has_more: false,
      });
    }
  });

  it('when envelopes miss or add devices, then 409 device_mismatch lists exactly them and nothing is stored', async () => {
    const [a1, a2, a3] = await person(t.call, 3);
    const [b1, b2] = await person(t.call, 2);
    const [stranger] = await person(t.call, 1);
    if (!a1 || !a2 || !a3 || !b1 || !b2 || !stranger) throw new Error('setup');
    const before = await inboxCount([a2, a3, b1, b2, stranger]);
    const res = await t.call('POST', '/api/messages', {
      token: a1.token,
      body: {
        to: b1.username,
        envelopes: envelopesFor(a1, [keyOf(b1), keyOf(a2), keyOf(stranger), keyOf(a1)], 'x'),
      },
    });
    expect(res.status).to.equal(409);
    expect(res.body.error).to.equal('device_mismatch');
    expect(res.body.message).to.be.a('string');
    const byId = (x: { device_id: string }, y: { device_id: string }) =>
      x.device_id.localeCompare(y.device_id);
    expect([...res.body.missing_devices].sort(byId)).to.deep.equal(
      [
        { user_id: b2.userId, ...keyOf(b2) },
        { user_id: a3.userId, ...keyOf(a3) },
      ].sort(byId),
    );
    expect([...res.body.extra_devices].sort()).to.deep.equal([stranger.deviceId, a1.deviceId].sort());
    expect(await inboxCount([a2, a3, b1, b2, stranger])).to.equal(before);
    expect(await messageCount(a1)).to.equal(0);
  });

  it('when a ciphertext is exactly 64 KiB decoded, then it is accepted and delivered intact', async () => {
    const [a1] = await person(t.call, 1);
    const [b1] = await person(t.call, 1);
    if (!a1 || !b1) throw new Error('setup');
    const ciphertext = Buffer.alloc(64 * 1024, 7).toString('base64');
    const [env] = envelopesFor(a1, [keyOf(b1)], 'x');
    const res = await t.call('POST', '/api/messages', {
      token: a1.token,
      body: { to: b1.username, envelopes: [{ ...env, ciphertext }] },
    });
    expect(res.status).to.equal(201);
    const pull = await t.call('GET', '/api/messages', { token: b1.token });
    expect(pull.body.events[0].ciphertext).to.equal(ciphertext);
  });

  it('when a device gets two envelopes, the recipient is unknown or a device id is unknown, then 400 / 404 / 409', async () => {
    const [a1] = await person(t.call, 1);
    const [b1] = await person(t.call, 1);
    if (!a1 || !b1) throw new Error('setup');
    const [env] = envelopesFor(a1, [keyOf(b1)], 'x');
    const twice = await t.call('POST', '/api/messages', {
      token: a1.token,
      body: { to: b1.username, envelopes: [env, env] },
    });
    expect(twice.status).to.equal(400);
    const unknownTo = await t.call('POST', '/api/messages', {
      token: a1.token,
      body: { to: uniqueName(), envelopes: [env] },
    });
    expect(unknownTo.status).to.equal(404);
    expect(unknownTo.body.error).to.equal('not_found');
    const unknownDevice = await t.call('POST', '/api/messages', {
      token: a1.token,
      body: {
        to: b1.username,
        envelopes: [env, { ...env, device_id: '0b1d2c3e-aaaa-4bbb-8ccc-123456789abc' }],
      },
    });
    expect(unknownDevice.status).to.equal(409);
    expect(unknownDevice.body.extra_devices).to.deep.equal(['0b1d2c3e-aaaa-4bbb-8ccc-123456789abc']);
    const neither = await t.call('POST', '/api/messages', { token: a1.token, body: { envelopes: [env] } });
    expect(neither.status).to.equal(400);
    expect(await messageCount(a1)).to.equal(0);
    expect(await inboxCount([b1])).to.equal(0);
  });

  it('when the same client_message_id is sent twice, then 200 with the first message_id and one event per device', async () => {
    const [a1, a2] = await person(t.call, 2);
    const [b1] = await person(t.call, 1);
    if (!a1 || !a2 || !b1) throw new Error('setup');
    const body = {
      to: b1.username,
      client_message_id: 'cm-1',
      envelopes: envelopesFor(a1, [keyOf(b1), keyOf(a2)], 'once'),
    };
    const first = await t.call('POST', '/api/messages', { token: a1.token, body });
    expect(first.status).to.equal(201);
    const again = await t.call('POST', '/api/messages', { token: a1.token, body });
    expect(again.status).to.equal(200);
    expect(again.body).to.deep.equal(first.body);
    expect(await messageCount(a1)).to.equal(1);
    expect(await inboxCount([b1])).to.equal(1);
    expect(await inboxCount([a2])).to.equal(1);
    // the id is per sending device: another device may reuse it
    const other = await t.call('POST', '/api/messages', {
      token: a2.token,
      body: { ...body, envelopes: envelopesFor(a2, [keyOf(b1), keyOf(a1)], 'other') },
    });
    expect(other.status).to.equal(201);
    expect(other.body.message_id).to.not.equal(first.body.message_id);
  });

  it('when identical sends race, then exactly one message is stored and all answers name it', async () => {
    const [a1] = await person(t.call, 1);
    const [b1, b2] = await person(t.call, 2);
    if (!a1 || !b1 || !b2) throw new Error('setup');
    const body = {
      to: b1.username,
      client_message_id: 'race',
      envelopes: envelopesFor(a1, [keyOf(b1), keyOf(b2)], 'r'),
    };
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => t.call('POST', '/api/messages', { token: a1.token, body })),
    );
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).to.have.length(1);
    expect(statuses.filter((s) => s === 200)).to.have.length(7);
    expect(new Set(answers.map((r) => r.body.message_id)).size).to.equal(1);
    expect(await messageCount(a1)).to.equal(1);
    expect(await inboxCount([b1, b2])).to.equal(2);
  });

  it('when pulling in pages, then after/limit/has_more/next_after walk the inbox and ack removes up_to', async () => {
    const [a1] = await person(t.call, 1);
    const [b1] = await person(t.call, 1);
    if (!a1 || !b1) throw new Error('setup');
    for (let i = 1; i <= 7; i++) {
      const res = await t.call('POST', '/api/messages', {
        token: a1.token,
        body: { to: b1.username, envelopes: envelopesFor(a1, [keyOf(b1)], `m${i}`) },
      });
      expect(res.status).to.equal(201);
    }
    const p1 = await t.call('GET', '/api/messages?limit=3', { token: b1.token });
    expect(p1.body.events.map((e: { seq: number }) => e.seq)).to.deep.equal([1, 2, 3]);
    expect(p1.body).to.include({ next_after: 3, has_more: true });
    const p2 = await t.call('GET', '/api/messages?after=3&limit=3', { token: b1.token });
    expect(p2.body.events.map((e: { seq: number }) => e.seq)).to.deep.equal([4, 5, 6]);
    expect(p2.body.has_more).to.equal(true);
    const p3 = await t.call('GET', '/api/messages?after=6&limit=3', { token: b1.token });
    expect(p3.body.events.map((e: { seq: number }) => e.seq)).to.deep.equal([7]);
    expect(p3.body).to.include({ next_after: 7, has_more: false });
    const exact = await t.call('GET', '/api/messages?after=4&limit=3', { token: b1.token });
    expect(exact.body.has_more).to.equal(false);
    const empty = await t.call('GET', '/api/messages?after=7', { token: b1.token });
    expect(empty.body).to.deep.equal({ events: [], next_after: 7, has_more: false });
    expect(decrypt(b1, p2.body.events[0])).to.equal('m4');
    expect(
      (await t.call('POST', '/api/messages/ack', { token: b1.token, body: { up_to: 4 } })).status,
    ).to.equal(204);
    const rest = await t.call('GET', '/api/messages?limit=500', { token: b1.token });
    expect(rest.body.events.map((e: { seq: number }) => e.seq)).to.deep.equal([5, 6, 7]);
    expect(rest.body.next_after).to.equal(7);
    // acking again or below is harmless
    expect(
      (await t.call('POST', '/api/messages/ack', { token: b1.token, body: { up_to: 2 } })).status,
    ).to.equal(204);
    expect((await t.call('GET', '/api/messages', { token: b1.token })).body.events).to.have.length(3);
  });

  it('when limit or after is out of range or not an integer, then 400 and never clamped', async () => {
    const [d] = (await person(t.call, 1)) as [Device];
    for (const q of [
      'limit=0',
      'limit=501',
      'limit=-1',
      'limit=abc',
      'limit=1.5',
      'limit=',
      'after=-1',
      'after=x',
      'after=1e3',
      'after=1&after=2',
      'other=1',
    ]) {
      const res = await t.call('GET', `/api/messages?${q}`, { token: d.token });
      expect(res.status, q).to.equal(400);
      expect(res.body.error).to.equal('invalid_request');
    }
    for (const q of ['limit=1', 'limit=500', 'after=0']) {
      expect((await t.call('GET', `/api/messages?${q}`, { token: d.token })).status, q).to.equal(200);
    }
    for (const up_to of [-1, 1.5, '3', null, 2 ** 60]) {
      expect(
        (await t.call('POST', '/api/messages/ack', { token: d.token, body: { up_to } })).status,
      ).to.equal(400);
    }
  });

  it('when a device pulls or acks, then only its own inbox is seen or touched', async () => {
    const [a1] = await person(t.call, 1);
    const [b1, b2] = await person(t.call, 2);
    if (!a1 || !b1 || !b2) throw new Error('setup');
    const sent = await t.call('POST', '/api/messages', {
      token: a1.token,
      body: { to: b1.username, envelopes: envelopesFor(a1, [keyOf(b1), keyOf(b2)], 'private') },
    });
    expect(sent.status).to.equal(201);
    expect((await t.call('GET', '/api/messages', { token: a1.token })).body.events).to.deep.equal([]);
    expect(
      (await t.call('POST', '/api/messages/ack', { token: a1.token, body: { up_to: 100 } })).status,
    ).to.equal(204);
    expect(
      (await t.call('POST', '/api/messages/ack', { token: b2.token, body: { up_to: 100 } })).status,
    ).to.equal(204);
    const b1Pull = await t.call('GET', '/api/messages', { token: b1.token });
    expect(b1Pull.body.events).to.have.length(1);
    expect(b1Pull.body.events[0].id).to.not.equal(undefined);
    expect(decrypt(b1, b1Pull.body.events[0])).to.equal('private');
    expect(decrypt(b2, b1Pull.body.events[0])).to.equal(null);
  });
});
