import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { expect } from 'chai';
import { parseDeliveries } from '../../common/queue/messages.ts';
import { type Topology, topology } from '../../common/queue/topology.ts';
import { testConfig } from '../helpers/env.ts';
import { type DeliveryStack, eventually, startDeliveryStack } from '../helpers/sender.ts';
import { type Sink, startSink } from '../helpers/sink.ts';
import { pair, send } from './people.ts';

describe('delivery shards (AMQP_DELIVERY_SHARDS=3)', () => {
  let stack: DeliveryStack;
  let sink: Sink;
  let conn: ChannelModel;
  let ch: Channel;
  let t: Topology;
  before(async () => {
    stack = await startDeliveryStack({ AMQP_DELIVERY_SHARDS: '3' });
    sink = await startSink();
    t = topology(testConfig(stack.env));
    conn = await amqp.connect(testConfig(stack.env).AMQP_URL);
    ch = await conn.createChannel();
  });
  after(async () => {
    await conn?.close();
    await sink?.close();
    await stack?.close();
  });

  it('when devices get messages, then each delivery waits in its device’s shard, and one sender pushes from all of them', async () => {
    expect(t.deliveryShards).to.have.length(3);
    const pairs = await Promise.all(Array.from({ length: 12 }, () => pair(stack.call, `${sink.url}/push`)));
    const ids = await Promise.all(pairs.map(({ from, to }) => send(stack.call, from, to, 'sharded')));
    // No sender yet: count what each shard holds against the devices it serves.
    const expected = t.deliveryShards.map(
      (q) => pairs.filter(({ to }) => t.deliveryQueue(to.deviceId) === q).length,
    );
    expect(expected.filter((n) => n > 0).length, 'devices over shards').to.be.at.least(2);
    // Each shard's messages, read and put back: the devices of the deliveries they carry.
    const held = async () => {
      const byShard: string[][] = [];
      for (const q of t.deliveryShards) {
        const devices: string[] = [];
        for (let m = await ch.get(q); m; m = await ch.get(q))
          devices.push(...(parseDeliveries(m.content) ?? []).map((d) => d.device_id));
        byShard.push(devices);
      }
      ch.nackAll(true);
      return byShard;
    };
    await eventually(async () => (await held()).flat().length === ids.length, 10_000);
    const byShard = await held();
    t.deliveryShards.forEach((q, n) => {
      for (const device of byShard[n] ?? []) expect(t.deliveryQueue(device), device).to.equal(q);
    });
    expect(byShard.map((devices) => devices.length)).to.deep.equal(expected);

    const sender = await stack.startSender();
    try {
      const reqs = await sink.waitFor((r) => new Set(r.map((q) => q.json().message_id)).size >= ids.length);
      expect(new Set(reqs.map((r) => r.json().message_id))).to.deep.equal(new Set(ids));
      for (const q of t.deliveryShards) expect((await ch.checkQueue(q)).consumerCount, q).to.equal(1);
    } finally {
      await sender.stop();
    }
  });
});
