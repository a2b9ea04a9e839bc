import { expect } from 'chai';
import { client } from '../helpers/http.ts';
import { decrypt, envelopesFor, keyOf, person } from '../helpers/people.ts';
import { type RelayedListener, StreamClient, startRelayedListener } from '../stream/helpers.ts';
import { groupTargets } from './helpers.ts';

describe('conversation events on the live stream', function () {
  // bounds, not timings: a loaded 2-core machine may take a while to relay through RabbitMQ
  this.timeout(90_000);
  let a: RelayedListener;
  let b: RelayedListener;
  const sockets: StreamClient[] = [];
  before(async () => {
    a = await startRelayedListener({ INSTANCE_ID: 'conversations-stream-a' });
    b = await startRelayedListener({ INSTANCE_ID: 'conversations-stream-b' });
  });
  after(async () => {
    await Promise.all(sockets.map((s) => s.close()));
    await a?.close();
    await b?.close();
  });

  it('when a group is created, messaged on listener A, edited, receipted and deleted, then sockets on listener B get every event type', async () => {
    const callA = client(a.url);
    const [a1, a2] = await person(callA, 2);
    const [b1] = await person(callA, 1);
    if (!a1 || !a2 || !b1) throw new Error('setup');
    const sa2 = new StreamClient(b.url, { token: a2.token });
    const sb1 = new StreamClient(b.url, { token: b1.token });
    sockets.push(sa2, sb1);
    await Promise.all([sa2.opened, sb1.opened]);
    const types = (s: StreamClient) => s.events.map((e) => e.type);

    const created = await callA('POST', '/api/groups', {
      token: a1.token,
      body: { name: 'live', members: [b1.username] },
    });
    const groupId = created.body.group_id;
    const sent = await callA('POST', '/api/messages', {
      token: a1.token,
      body: { group_id: groupId, envelopes: envelopesFor(a1, await groupTargets(callA, a1, groupId), 'v1') },
    });
    const id = sent.body.message_id;
    await Promise.all([sb1.waitEvents(2, 30_000), sa2.waitEvents(2, 30_000)]);
    const edit = await callA('PUT', `/api/messages/${id}`, {
      token: a1.token,
      body: { envelopes: envelopesFor(a1, [keyOf(a2), keyOf(b1)], 'v2') },
    });
    expect(edit.status).to.equal(200);
    const receipt = await callA('POST', `/api/messages/${id}/receipts`, {
      token: b1.token,
      body: { type: 'delivered' },
    });
    expect(receipt.status).to.equal(204);
    await Promise.all([sb1.waitEvents(3, 30_000), sa2.waitEvents(4, 30_000)]);
    expect((await callA('DELETE', `/api/messages/${id}`, { token: a1.token })).status).to.equal(204);
    await Promise.all([sb1.waitEvents(4, 30_000), sa2.waitEvents(5, 30_000)]);

    expect(types(sb1)).to.deep.equal(['group.updated', 'message', 'message.edited', 'message.deleted']);
    expect(types(sa2)).to.deep.equal([
      'group.updated',
      'message',
      'message.edited',
      'receipt',
      'message.deleted',
    ]);
    expect(decrypt(b1, sb1.events[2])).to.equal('v2');
    expect(sa2.events[3]).to.include({ receipt: 'delivered', message_id: id });
  });
});
