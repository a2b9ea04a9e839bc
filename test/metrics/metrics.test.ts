import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { request } from 'undici';
import { Messenger } from '../../common/client/index.ts';
import { createLogger } from '../../common/log.ts';
import { type MetricsServer, serveMetrics } from '../../common/metrics.ts';
import { PASSWORD } from '../client/helpers.ts';
import { startListener, type TestListener } from '../helpers/listener.ts';
import { uniqueName } from '../helpers/people.ts';
import { isolatedDatabase } from '../helpers/sender.ts';
import { type Sink, startSink } from '../helpers/sink.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';

/** One sample of a Prometheus text exposition: `name{labels}` (labels in the given order). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const wanted = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (wanted) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

async function scrape(url: string): Promise<{ status: number; text: string; type: string }> {
  const res = await request(url);
  return {
    status: res.statusCode,
    text: await res.body.text(),
    type: String(res.headers['content-type']),
  };
}

async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('Prometheus metrics', () => {
  describe('an in-process listener on its own database (no relay)', () => {
    let db: Awaited<ReturnType<typeof isolatedDatabase>>;
    let listener: TestListener;
    let server: MetricsServer;
    before(async () => {
      db = await isolatedDatabase();
      listener = await startListener({ DATABASE_URL: db.url });
      server = await serveMetrics(
        listener.deps.metrics.registry,
        '127.0.0.1',
        0,
        createLogger('silent', 't'),
      );
    });
    after(async () => {
      await server?.close();
      await listener?.close();
      await db?.drop();
    });

    it('when messages wait in the outbox, then backlog, relay lag, accepted messages and request durations show', async () => {
      const url = `http://127.0.0.1:${server.port}/metrics`;
      const before = await scrape(url);
      expect(before.status).to.equal(200);
      expect(before.type).to.match(/^text\/plain/);
      expect(sample(before.text, 'messenger_outbox_backlog')).to.equal(0);
      expect(sample(before.text, 'messenger_relay_lag_seconds')).to.equal(0);

      const alice = new Messenger({ baseUrl: listener.url });
      const bob = new Messenger({ baseUrl: listener.url });
      const [a, b] = [uniqueName(), uniqueName()];
      await alice.register(a, PASSWORD);
      await bob.register(b, PASSWORD);
      await alice.login(a, PASSWORD);
      await bob.login(b, PASSWORD);
      for (const t of ['one', 'two', 'three']) await alice.send(b, t);

      const after = (await scrape(url)).text;
      expect(sample(after, 'messenger_messages_accepted_total', { kind: 'direct' })).to.equal(3);
      expect(sample(after, 'messenger_outbox_backlog')).to.equal(3);
      expect(sample(after, 'messenger_relay_lag_seconds')).to.be.greaterThan(0);
      const posted = { method: 'POST', route: '/api/messages', status: '201' };
      expect(sample(after, 'messenger_http_request_duration_seconds_count', posted)).to.equal(3);
      const lookups = { method: 'GET', route: '/api/users/:username', status: '200' };
      expect(sample(after, 'messenger_http_request_duration_seconds_count', lookups)).to.be.greaterThan(0);
      expect(sample(after, 'messenger_pg_pool_connections', { state: 'free' })).to.be.a('number');
      expect(after).to.include('service="listener"');

      const other = await scrape(`http://127.0.0.1:${server.port}/other`);
      expect(other.status).to.equal(404);
    });

    it('when a path is unknown, then its requests count under one "unmatched" route, not the raw path', async () => {
      await request(`${listener.url}/api/no-such-${randomBytes(4).toString('hex')}`).then((r) =>
        r.body.dump(),
      );
      const text = (await scrape(`http://127.0.0.1:${server.port}/metrics`)).text;
      expect(
        sample(text, 'messenger_http_request_duration_seconds_count', { route: 'unmatched' }),
      ).to.be.at.least(1);
      expect(text).to.not.include('no-such-');
    });
  });

  describe('the native stack behind nginx', () => {
    let stack: TestStack;
    let sink: Sink;
    let db: Awaited<ReturnType<typeof isolatedDatabase>>;
    before(async function () {
      this.timeout(90_000);
      sink = await startSink();
      // Its own database: the relay and sender see only this test's events, so counts are exact.
      db = await isolatedDatabase();
      stack = await startTestStack({
        listeners: 1,
        senders: 1,
        envOverrides: {
          DATABASE_URL: db.url,
          AMQP_PREFIX: `test.metrics.${randomBytes(4).toString('hex')}`,
          SENDER_ALLOW_PRIVATE_ADDRESSES: 'true',
          LOG_LEVEL: 'debug',
        },
      });
    });
    after(async () => {
      await stack?.stop();
      await sink?.close();
      await db?.drop();
    });

    const listenerUrl = () => `http://127.0.0.1:${stack.listeners[0]?.metricsPort}/metrics`;
    const senderUrl = () => `http://127.0.0.1:${stack.senders[0]?.metricsPort}/metrics`;

    /** alice, logged in, and bob (username `b`) whose device pushes to the sink. */
    async function senderAndPushedRecipient() {
      const client = () => new Messenger({ baseUrl: stack.url, dispatcher: stack.dispatcher });
      const [alice, bob] = [client(), client()];
      const [a, b] = [uniqueName(), uniqueName()];
      await alice.register(a, PASSWORD);
      await bob.register(b, PASSWORD);
      await alice.login(a, PASSWORD);
      await bob.login(b, PASSWORD, { userAddress: `${sink.url}/push` });
      return { alice, b };
    }

    it('when pushes are delivered, then the sender counts them and the commit-to-push histogram moves', async () => {
      const { alice, b } = await senderAndPushedRecipient();

      const before = (await scrape(senderUrl())).text;
      const delivered0 = sample(before, 'messenger_deliveries_total', { outcome: 'delivered' }) ?? 0;
      const latency0 =
        sample(before, 'messenger_commit_to_push_seconds_count', { outcome: 'delivered' }) ?? 0;
      for (const t of ['one', 'two', 'three']) await alice.send(b, t);
      await sink.waitFor((r) => r.length >= 3);
      let text = '';
      await until('delivered counter', async () => {
        text = (await scrape(senderUrl())).text;
        return (sample(text, 'messenger_deliveries_total', { outcome: 'delivered' }) ?? 0) >= delivered0 + 3;
      });
      expect(sample(text, 'messenger_deliveries_total', { outcome: 'delivered' })).to.equal(delivered0 + 3);
      expect(sample(text, 'messenger_commit_to_push_seconds_count', { outcome: 'delivered' })).to.equal(
        latency0 + 3,
      );
      expect(
        sample(text, 'messenger_commit_to_push_seconds_sum', { outcome: 'delivered' }),
      ).to.be.greaterThan(0);
      expect(sample(text, 'messenger_amqp_connected')).to.equal(1);
      for (const queue of ['deliveries', 'retry', 'parking']) {
        expect(sample(text, 'messenger_queue_messages', { queue }), queue).to.be.a('number');
      }
      expect(sample(text, 'process_cpu_user_seconds_total'), 'default process metrics').to.be.a('number');

      const listener = (await scrape(listenerUrl())).text;
      expect(sample(listener, 'messenger_messages_accepted_total', { kind: 'direct' })).to.be.at.least(3);
      expect(sample(listener, 'nodejs_eventloop_lag_seconds')).to.be.a('number');
      expect(sample(listener, 'messenger_amqp_connected')).to.equal(1);
    });

    it('when a push was caused by a request, then the sender logs the request id the listener logged', async () => {
      const { alice, b } = await senderAndPushedRecipient();
      const pushes = sink.requests.length;
      const sent = await alice.send(b, 'trace me');
      const [push] = (await sink.waitFor((r) => r.length > pushes)).slice(pushes);
      const eventId = push?.headers['webhook-id'];

      const lines = async (name: string) =>
        (await readFile(join(stack.runDir, 'logs', `${name}.log`), 'utf8')).split('\n').flatMap((l) => {
          try {
            return [JSON.parse(l) as Record<string, unknown>];
          } catch {
            return []; // not JSON, or a line still being written
          }
        });
      const accepted = (await lines('listener-0')).find((l) => l.msg_id === sent.message_id);
      const reqId = accepted?.req_id;
      expect(reqId, 'the listener logs the request id with the message').to.be.a('string');
      const ofRequest = (await lines('listener-0')).filter((l) => l.req_id === reqId);
      expect(ofRequest.map((l) => l.msg)).to.include.members(['message accepted', 'request']);
      let delivered: Record<string, unknown> | undefined;
      await until('sender log line', async () => {
        delivered = (await lines('sender-0')).find(
          (l) => l.event_id === eventId && l.msg === 'push delivered',
        );
        return !!delivered;
      });
      expect(delivered?.req_id).to.equal(reqId);
    });

    it('when /metrics is asked through nginx, then it is 404 while the internal port serves it', async () => {
      const res = await stack.call('GET', '/metrics');
      expect(res.status).to.equal(404);
      expect((await scrape(listenerUrl())).status).to.equal(200);
    });
  });
});
