import { expect } from 'chai';
import { useListener } from '../helpers/listener.ts';
import { type Device, decrypt, envelopesFor, keyOf, person } from '../helpers/people.ts';
import { drain, groupTargets, ofType, pullAll } from './helpers.ts';

describe('editing, deleting and receipts', () => {
  const t = useListener();

  /** alice (2 devices) sends to bob (2 devices); returns the message id and sent_at. */
  async function conversation() {
    const [a1, a2] = await person(t.call, 2);
    const [b1, b2] = await person(t.call, 2);
    if (!a1 || !a2 || !b1 || !b2) throw new Error('setup');
    const sent = await t.call('POST', '/api/messages', {
      token: a1.token,
      body: { to: b1.username, envelopes: envelopesFor(a1, [keyOf(b1), keyOf(b2), keyOf(a2)], 'tpyo') },
    });
    expect(sent.status).to.equal(201);
    return { a1, a2, b1, b2, id: sent.body.message_id as string, sentAt: sent.body.sent_at as string };
  }

  it("when the sender edits from another device, then the recipients and the sender's other devices decrypt message.edited with the original sent_at", async () => {
    const { a1, a2, b1, b2, id, sentAt } = await conversation();
    for (const d of [a2, b1, b2]) await drain(t.call, d);
    const edit = await t.call('PUT', `/api/messages/${id}`, {
      token: a2.token,
      body: { envelopes: envelopesFor(a2, [keyOf(b1), keyOf(b2), keyOf(a1)], 'typo') },
    });
    expect(edit.status, JSON.stringify(edit.body)).to.equal(200);
    expect(edit.body).to.include({ message_id: id, sent_at: sentAt });
    for (const d of [a1, b1, b2]) {
      const [event, ...rest] = await drain(t.call, d);
      expect(rest).to.deep.equal([]);
      expect(event).to.include({
        type: 'message.edited',
        message_id: id,
        sent_at: sentAt,
        edited_at: edit.body.edited_at,
      });
      expect(event.from.device_id).to.equal(a2.deviceId);
      expect(decrypt(d, event)).to.equal('typo');
    }
    expect(await pullAll(t.call, a2)).to.deep.equal([]);
  });

  it('when an edit misses a device, comes from someone else or is malformed, then 409/404/400 and nothing is delivered', async () => {
    const { a1, a2, b1, b2, id } = await conversation();
    for (const d of [a1, a2, b1, b2]) await drain(t.call, d);
    const partial = await t.call('PUT', `/api/messages/${id}`, {
      token: a1.token,
      body: { envelopes: envelopesFor(a1, [keyOf(b1)], 'x') },
    });
    expect(partial.status).to.equal(409);
    expect(partial.body.error).to.equal('device_mismatch');
    const byBob = await t.call('PUT', `/api/messages/${id}`, {
      token: b1.token,
      body: { envelopes: envelopesFor(b1, [keyOf(a1), keyOf(a2), keyOf(b2)], 'x') },
    });
    expect(byBob.status).to.equal(404);
    expect((await t.call('PUT', `/api/messages/${id}`, { token: a1.token, body: {} })).status).to.equal(400);
    expect(
      (await t.call('PUT', '/api/messages/nope', { token: a1.token, body: { envelopes: [] } })).status,
    ).to.equal(404);
    expect((await t.call('DELETE', `/api/messages/${id}`, { token: b1.token })).status).to.equal(404);
    expect(
      (await t.call('DELETE', `/api/messages/${crypto.randomUUID()}`, { token: a1.token })).status,
    ).to.equal(404);
    for (const d of [a1, a2, b1, b2]) expect(await pullAll(t.call, d)).to.deep.equal([]);
    const row = await t.listener.deps.db('messages').where({ id }).first();
    expect(row.edited_at).to.equal(null);
    expect(row.deleted_at).to.equal(null);
  });

  it('when a message is deleted, then its undelivered copies are gone, everyone else gets message.deleted, and editing or deleting it again is 404', async () => {
    const { a1, a2, b1, b2, id } = await conversation();
    await drain(t.call, b1); // b1 has read it; b2 and a2 have not
    const del = await t.call('DELETE', `/api/messages/${id}`, { token: a1.token });
    expect(del.status, JSON.stringify(del.body)).to.equal(204);
    for (const d of [a2, b1, b2]) {
      const events = await drain(t.call, d);
      expect(
        events.map((e) => e.type),
        d.username,
      ).to.deep.equal(['message.deleted']);
      expect(events[0]).to.include({ message_id: id, nonce: null, ciphertext: null });
      expect(events[0].from.device_id).to.equal(a1.deviceId);
    }
    expect(await pullAll(t.call, a1)).to.deep.equal([]);
    const again = await t.call('DELETE', `/api/messages/${id}`, { token: a2.token });
    expect(again.status).to.equal(404);
    const edit = await t.call('PUT', `/api/messages/${id}`, {
      token: a1.token,
      body: { envelopes: envelopesFor(a1, [keyOf(b1), keyOf(b2), keyOf(a2)], 'x') },
    });
    expect(edit.status).to.equal(404);
    const receipt = await t.call('POST', `/api/messages/${id}/receipts`, {
      token: b1.token,
      body: { type: 'read' },
    });
    expect(receipt.status).to.equal(404);
  });

  it('when a recipient sends receipts, then every device of the sender gets them, and strangers or the sender get 404', async () => {
    const { a1, a2, b1, b2, id } = await conversation();
    await drain(t.call, a2);
    for (const type of ['delivered', 'read']) {
      const res = await t.call('POST', `/api/messages/${id}/receipts`, { token: b2.token, body: { type } });
      expect(res.status, JSON.stringify(res.body)).to.equal(204);
    }
    for (const d of [a1, a2]) {
      const receipts = ofType(await drain(t.call, d), 'receipt');
      expect(
        receipts.map((r) => r.receipt),
        d.username,
      ).to.deep.equal(['delivered', 'read']);
      expect(receipts[0]).to.include({ message_id: id, nonce: null, ciphertext: null });
      expect(receipts[0].from.device_id).to.equal(b2.deviceId);
    }
    expect(ofType(await pullAll(t.call, b1), 'receipt')).to.deep.equal([]);
    const [s1] = await person(t.call, 1);
    if (!s1) throw new Error('setup');
    expect(
      (await t.call('POST', `/api/messages/${id}/receipts`, { token: s1.token, body: { type: 'read' } }))
        .status,
    ).to.equal(404);
    expect(
      (await t.call('POST', `/api/messages/${id}/receipts`, { token: a2.token, body: { type: 'read' } }))
        .status,
    ).to.equal(404);
    expect(
      (await t.call('POST', `/api/messages/${id}/receipts`, { token: b1.token, body: { type: 'seen' } }))
        .status,
    ).to.equal(400);
    expect(await pullAll(t.call, a1)).to.deep.equal([]);
  });

  it('when a group message is edited, deleted and receipted, then the current members get it and a member added later can send no receipt', async () => {
    const [a1] = await person(t.call, 1);
    const [b1, b2] = await person(t.call, 2);
    const [c1] = await person(t.call, 1);
    if (!a1 || !b1 || !b2 || !c1) throw new Error('setup');
    const created = await t.call('POST', '/api/groups', {
      token: a1.token,
      body: { name: 'edits', members: [b1.username] },
    });
    const groupId = created.body.group_id;
    const sent = await t.call('POST', '/api/messages', {
      token: a1.token,
      body: { group_id: groupId, envelopes: envelopesFor(a1, await groupTargets(t.call, a1, groupId), 'v1') },
    });
    expect(sent.status).to.equal(201);
    const id = sent.body.message_id;
    expect(
      (
        await t.call('POST', `/api/groups/${groupId}/members`, {
          token: a1.token,
          body: { username: c1.username },
        })
      ).status,
    ).to.equal(204);
    for (const d of [a1, b1, b2, c1]) await drain(t.call, d);

    const edit = await t.call('PUT', `/api/messages/${id}`, {
      token: a1.token,
      body: { envelopes: envelopesFor(a1, await groupTargets(t.call, a1, groupId), 'v2') },
    });
    expect(edit.status, JSON.stringify(edit.body)).to.equal(200);
    for (const d of [b1, b2, c1]) {
      const [event] = await drain(t.call, d);
      expect(event).to.include({ type: 'message.edited', group_id: groupId, message_id: id });
      expect(decrypt(d as Device, event)).to.equal('v2');
    }
    expect(
      (await t.call('POST', `/api/messages/${id}/receipts`, { token: b1.token, body: { type: 'read' } }))
        .status,
    ).to.equal(204);
    expect(
      (await t.call('POST', `/api/messages/${id}/receipts`, { token: c1.token, body: { type: 'read' } }))
        .status,
    ).to.equal(404);
    expect(ofType(await drain(t.call, a1), 'receipt')).to.have.length(1);

    expect((await t.call('DELETE', `/api/messages/${id}`, { token: a1.token })).status).to.equal(204);
    for (const d of [b1, b2, c1]) {
      expect((await drain(t.call, d)).map((e) => e.type)).to.deep.equal(['message.deleted']);
    }
  });
});
