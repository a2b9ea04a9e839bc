import amqp from 'amqplib';
import { expect } from 'chai';
import { listAttempts } from '../../common/db/deliveries.ts';
import { topology } from '../../common/queue/topology.ts';
import { testConfig } from '../helpers/env.ts';
import { type DeliveryStack, eventually, startDeliveryStack } from '../helpers/sender.ts';
import { type Sink, startSink } from '../helpers/sink.ts';
import { pair, send } from './people.ts';

/** Messages waiting in this stack's parking queue, read without consuming them for good. */
async function parked(stack: DeliveryStack): Promise<{ event_id: string; outcome: { reason: string } }[]> {
  const config = testConfig(stack.env);
  const conn = await amqp.connect(config.AMQP_URL);
  try {
    const ch = await conn.createChannel();
    const out = [];
    for (;;) {
      const msg = await ch.get(topology(config).parking);
      if (!msg) break;
      out.push(JSON.parse(msg.content.toString()));
    }
    await ch.close(); // unacked gets go back to the queue
    return out;
  } finally {
    await conn.close();
  }
}

describe('push refusals (SENDER_ALLOW_PRIVATE_ADDRESSES=false)', () => {
  let stack: DeliveryStack;
  let sink: Sink;
  before(async () => {
    stack = await startDeliveryStack({ SENDER_ALLOW_PRIVATE_ADDRESSES: 'false' });
    await stack.startSender();
    sink = await startSink();
  });
  after(async () => {
    await sink?.close();
    await stack?.close();
  });

  for (const host of ['localhost', '2130706433', '0x7f.0.0.1', '[::ffff:127.0.0.1]']) {
    it(`when the address is http://${host}:<port>, then the sink is never contacted, the delivery is parked and the event stays for pull`, async () => {
      const { from, to } = await pair(stack.call, `http://${host}:${sink.port}/x`);
      const messageId = await send(stack.call, from, to, 'not to loopback');
      const [attempt] = await eventually(async () => {
        const rows = await listAttempts(stack.db, { device_id: to.deviceId });
        return rows.length >= 1 && rows;
      });
      expect(attempt).to.include({
        attempt: 1,
        outcome: 'dead',
        error_class: 'blocked_address',
        status_code: null,
      });
      expect(sink.requests).to.have.length(0);
      const pull = await stack.call('GET', '/api/messages', { token: to.token });
      expect(pull.body.events.map((e: { message_id: string }) => e.message_id)).to.deep.equal([messageId]);
      const inParking = await eventually(async () =>
        (await parked(stack)).find((p) => p.event_id === pull.body.events[0].id),
      );
      expect(inParking.outcome.reason).to.equal('blocked_address');
    });
  }
});
