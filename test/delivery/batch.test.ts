import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { expect } from 'chai';
import { loadSigningKey } from '../../common/crypto/signing-key.ts';
import { type DeliveryStore, deliveryStore } from '../../common/db/deliveries.ts';
import { createLogger } from '../../common/log.ts';
import { type Broker, connectBroker } from '../../common/queue/broker.ts';
import { type Delivery, deliveryPublications, parseDeliveries } from '../../common/queue/messages.ts';
import { createPusher } from '../../sender/deliver.ts';
import { startSender } from '../../sender/worker.ts';
import { testConfig } from '../helpers/env.ts';
import { type DeliveryStack, eventually, startDeliveryStack } from '../helpers/sender.ts';
import { type Sink, startSink } from '../helpers/sink.ts';
import { pair, send } from './people.ts';

describe('a message carrying several deliveries', () => {
  let stack: DeliveryStack;
  let sink: Sink;
  let conn: ChannelModel;
  let ch: Channel;
  let broker: Broker;
  before(async () => {
    stack = await startDeliveryStack();
    sink = await startSink();
    const config = testConfig(stack.env);
    conn = await amqp.connect(config.AMQP_URL);
    ch = await conn.createChannel();
    broker = await connectBroker(config, createLogger('silent', 'test'));
  });
  after(async () => {
    await broker?.close();
    await conn?.close();
    await sink?.close();
    await stack?.close();
  });

  it('when one delivery of the batch cannot record its outcome, then only it is queued again, and the message is acked', async () => {
    const config = testConfig(stack.env);
    const pairs = await Promise.all(Array.from({ length: 4 }, () => pair(stack.call, `${sink.url}/push`)));
    const ids = await Promise.all(pairs.map(({ from, to }) => send(stack.call, from, to, 'batched')));
    // What the relay queued (no sender yet), taken off the queue and put back as ONE message.
    const deliveries: Delivery[] = [];
    await eventually(async () => {
      for (
        let m = await ch.get(broker.topology.deliveries);
        m;
        m = await ch.get(broker.topology.deliveries)
      ) {
        deliveries.push(...(parseDeliveries(m.content) ?? []));
        ch.ack(m);
      }
      return deliveries.length === ids.length;
    });
    const [batch, ...more] = deliveryPublications(
      broker.topology,
      deliveries.map((delivery) => ({ delivery, outboxId: '1' })),
    );
    expect(more).to.have.length(0);
    if (!batch) throw new Error('no batch');
    await broker.publish([batch]);

    // The real store, whose first outcome write for one device fails (as when PostgreSQL is down).
    const victim = pairs[0]?.to.deviceId;
    const real = deliveryStore(stack.db);
    let failures = 0;
    const store: DeliveryStore = {
      findPushTarget: real.findPushTarget,
      async recordOutcome(row) {
        if (row.device_id === victim && failures++ === 0) throw new Error('test: outcome not recorded');
        return real.recordOutcome(row);
      },
    };
    const key = await loadSigningKey(config.SIGNING_KEY_FILE);
    const pusher = createPusher(config, key.secretKey);
    const consumer = startSender({
      config,
      db: stack.db,
      broker,
      pusher,
      log: createLogger('silent', 'test'),
      store,
    });
    try {
      const reqs = await sink.waitFor((r) => r.length >= ids.length + 1);
      await eventually(async () => (await ch.checkQueue(broker.topology.deliveries)).messageCount === 0);
      // Settled: nothing else arrives.
      await new Promise((r) => setTimeout(r, 300));
      const pushes = new Map<string, number>();
      for (const r of sink.requests)
        pushes.set(r.json().message_id, (pushes.get(r.json().message_id) ?? 0) + 1);
      expect(reqs.length).to.be.at.least(ids.length + 1);
      expect(sink.requests).to.have.length(ids.length + 1);
      expect(pushes.get(ids[0] ?? '')).to.equal(2);
      for (const id of ids.slice(1)) expect(pushes.get(id), id).to.equal(1);
      expect(failures).to.equal(2);
      const left = await stack.db('inbox').whereIn(
        'device_id',
        pairs.map((p) => p.to.deviceId),
      );
      expect(left).to.have.length(0);
    } finally {
      await consumer.stop();
      await pusher.close();
    }
  });
});
