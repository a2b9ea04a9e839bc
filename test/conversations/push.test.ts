import { expect } from 'chai';
import { decrypt, envelopesFor, keyOf, person } from '../helpers/people.ts';
import { type DeliveryStack, startDeliveryStack } from '../helpers/sender.ts';
import { type Sink, startSink } from '../helpers/sink.ts';
import { groupTargets } from './helpers.ts';

describe('conversation events by push', function () {
  // bounds, not timings: a loaded 2-core machine may take a while to push through RabbitMQ
  this.timeout(90_000);
  let stack: DeliveryStack;
  let sink: Sink;
  before(async () => {
    stack = await startDeliveryStack();
    await stack.startSender();
    sink = await startSink();
  });
  after(async () => {
    await sink?.close();
    await stack?.close();
  });

  it('when a group is created, messaged, edited, receipted and the message deleted, then every event type reaches the devices by push', async () => {
    const { call } = stack;
    const [a1, a2] = await person(call, 2);
    const [b1] = await person(call, 1);
    if (!a1 || !a2 || !b1) throw new Error('setup');
    for (const [d, name] of [
      [a2, 'a2'],
      [b1, 'b1'],
    ] as const) {
      const res = await call('PATCH', '/api/devices/current', {
        token: d.token,
        body: { user_address: `${sink.url}/push?device=${name}` },
      });
      expect(res.status).to.equal(200);
    }
    const pushed = (device: string) =>
      sink.requests
        .filter((r) => r.path === `/push?device=${device}`)
        .map((r) => r.json())
        // at-least-once: a retried push may arrive twice; `id` dedupes, `seq` orders
        .filter((e, i, all) => all.findIndex((x) => x.id === e.id) === i)
        .sort((x, y) => x.seq - y.seq);
    const has = (device: string, type: string) => pushed(device).find((e) => e.type === type);
    const arrived = (pairs: [string, string][]) =>
      sink.waitFor(() => pairs.every(([d, t]) => has(d, t)), 30_000);

    const created = await call('POST', '/api/groups', {
      token: a1.token,
      body: { name: 'pushed', members: [b1.username] },
    });
    const groupId = created.body.group_id;
    const sent = await call('POST', '/api/messages', {
      token: a1.token,
      body: { group_id: groupId, envelopes: envelopesFor(a1, await groupTargets(call, a1, groupId), 'v1') },
    });
    const id = sent.body.message_id;
    await arrived([
      ['b1', 'group.updated'],
      ['b1', 'message'],
      ['a2', 'message'],
    ]);
    expect(decrypt(b1, has('b1', 'message'))).to.equal('v1');

    const edit = await call('PUT', `/api/messages/${id}`, {
      token: a1.token,
      body: { envelopes: envelopesFor(a1, [keyOf(a2), keyOf(b1)], 'v2') },
    });
    expect(edit.status).to.equal(200);
    const receipt = await call('POST', `/api/messages/${id}/receipts`, {
      token: b1.token,
      body: { type: 'read' },
    });
    expect(receipt.status).to.equal(204);
    await arrived([
      ['b1', 'message.edited'],
      ['a2', 'message.edited'],
      ['a2', 'receipt'],
    ]);
    expect(decrypt(b1, has('b1', 'message.edited'))).to.equal('v2');
    expect(has('a2', 'receipt')).to.include({ receipt: 'read', message_id: id });
    expect(has('a2', 'receipt').from.device_id).to.equal(b1.deviceId);

    expect((await call('DELETE', `/api/messages/${id}`, { token: a1.token })).status).to.equal(204);
    await arrived([
      ['b1', 'message.deleted'],
      ['a2', 'message.deleted'],
    ]);
    expect(pushed('b1').map((e) => e.type)).to.deep.equal([
      'group.updated',
      'message',
      'message.edited',
      'message.deleted',
    ]);
    expect(pushed('a2').map((e) => e.type)).to.deep.equal([
      'group.updated',
      'message',
      'message.edited',
      'receipt',
      'message.deleted',
    ]);
  });
});
