import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { expect } from 'chai';
import { topology } from '../../common/queue/topology.ts';
import { testConfig } from '../helpers/env.ts';
import { type DeliveryStack, startDeliveryStack } from '../helpers/sender.ts';
import { type Sink, startSink } from '../helpers/sink.ts';
import { pair, send } from './people.ts';

const BACKLOG = 5_000;

/**
 * A receiver that never answers, with thousands of deliveries queued for it, must not delay other
 * receivers' pushes: its deliveries find its push slots taken and are deferred, each time for
 * longer (they cycled through the shared queue every second before, ahead of everyone's first
 * attempts), within the retry window.
 */
describe('push delivery next to a tarpit origin', function () {
  this.timeout(90_000);
  let stack: DeliveryStack;
  let tarpit: Sink;
  let fast: Sink;
  before(async () => {
    // Production retry timing: the first deferral waits 1 s, then 2 s, 4 s …
    stack = await startDeliveryStack({
      SENDER_RETRY_BASE_MS: '1000',
      SENDER_RETRY_MAX_MS: '3600000',
      SENDER_RETRY_JITTER: 'false',
      SENDER_TIMEOUT_MS: '20000',
    });
    tarpit = await startSink({ otherwise: { status: 200, delayMs: 60_000 } });
    fast = await startSink();
  });
  after(async () => {
    await stack?.close();
    await tarpit?.close();
    await fast?.close();
  });

  it('when 5,000 deliveries wait for a receiver that never answers, then another receiver still gets each push within a second', async () => {
    const slow = await pair(stack.call, `${tarpit.url}/tarpit`);
    const quick = await pair(stack.call, `${fast.url}/quick`);
    // The backlog, as the listener's first publishes look (event and address carried along).
    const config = testConfig(stack.env);
    const conn = await amqp.connect(config.AMQP_URL);
    try {
      const ch = await conn.createConfirmChannel();
      const body = JSON.stringify({ type: 'message', note: 'tarpit backlog' });
      for (let i = 0; i < BACKLOG; i++) {
        const delivery = {
          device_id: slow.to.deviceId,
          seq: i + 1,
          event_id: randomUUID(),
          request_id: null,
          created_at: new Date().toISOString(),
          attempt: 0,
          body,
          address: `${tarpit.url}/tarpit`,
        };
        ch.sendToQueue(topology(config).deliveries, Buffer.from(JSON.stringify(delivery)), {
          persistent: true,
        });
      }
      await ch.waitForConfirms();
    } finally {
      await conn.close();
    }
    const sender = await stack.startSender();
    try {
      await tarpit.waitFor((r) => r.length >= 8, 20_000);
      // Let the backlog go round a few times.
      await new Promise((r) => setTimeout(r, 6_000));
      const latencies: number[] = [];
      for (let i = 0; i < 10; i++) {
        const started = Date.now();
        const id = await send(stack.call, quick.from, quick.to, `quick ${i}`);
        await fast.waitFor((r) => r.some((q) => q.json().message_id === id), 20_000);
        latencies.push(Date.now() - started);
      }
      expect(Math.max(...latencies), `push latencies ${latencies.join(', ')} ms`).to.be.below(1_000);
      // The tarpit got no more than its per-origin share at once.
      expect(tarpit.requests.length).to.be.at.most(Number(config.SENDER_CONNECTIONS_PER_ORIGIN));
    } finally {
      await tarpit.close(); // its held pushes fail at once, so the sender stops without waiting them out
      await sender.stop();
    }
  });
});
