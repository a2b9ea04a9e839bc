import { expect } from 'chai';
import { listAttempts } from '../../common/db/deliveries.ts';
import { verifyWebhook } from '../../sender/webhook-signature.ts';
import { decrypt, login } from '../helpers/people.ts';
import { type DeliveryStack, eventually, startDeliveryStack, type TestSender } from '../helpers/sender.ts';
import { type Sink, startSink } from '../helpers/sink.ts';
import { pair, send } from './people.ts';

describe('push delivery', () => {
  let stack: DeliveryStack;
  let sender: TestSender;
  let sink: Sink;
  before(async () => {
    // A short whole-request timeout so the timeout test does not wait 10 s.
    stack = await startDeliveryStack({ SENDER_TIMEOUT_MS: '1000' });
    sender = await stack.startSender();
  });
  afterEach(() => sink?.close());
  after(async () => {
    await sender?.stop();
    await stack?.close();
  });

  it('when a message is sent to a device with an address, then a signed push arrives that the recipient decrypts', async () => {
    sink = await startSink();
    const { from, to } = await pair(stack.call, `${sink.url}/push/here?token=abc`);
    const messageId = await send(stack.call, from, to, 'hello over push');
    const [req] = await sink.waitFor((r) => r.length >= 1);
    if (!req) throw new Error('no push');
    expect(req.method).to.equal('POST');
    expect(req.path).to.equal('/push/here?token=abc');
    expect(req.headers['content-type']).to.equal('application/json');
    const event = req.json();
    expect(event.message_id).to.equal(messageId);
    expect(event.type).to.equal('message');
    expect(req.headers['webhook-id']).to.equal(event.id);
    expect(decrypt(to, event)).to.equal('hello over push');

    const key = await stack.call('GET', '/api/server-key');
    const publicKey = Buffer.from(key.body.public_key, 'base64');
    const headers = {
      id: String(req.headers['webhook-id']),
      timestamp: String(req.headers['webhook-timestamp']),
      signature: String(req.headers['webhook-signature']),
    };
    expect(headers.signature).to.match(/^v1a,[A-Za-z0-9+/]+=*$/);
    expect(Math.abs(Number(headers.timestamp) - Date.now() / 1000)).to.be.below(60);
    expect(verifyWebhook(publicKey, headers, req.body)).to.equal(true);
    expect(verifyWebhook(publicKey, headers, req.body.replace('message', 'massage'))).to.equal(false);

    // Delivered means removed from the inbox: a pull no longer returns it.
    await eventually(
      async () => {
        const pull = await stack.call('GET', '/api/messages', { token: to.token });
        return pull.body.events.length === 0;
      },
      5_000,
      'inbox emptied',
    );
  });

  it('when the sink answers 500, 500, then 200, then the third attempt delivers after growing delays, same webhook-id', async () => {
    sink = await startSink({ script: [{ status: 500 }, { status: 500 }] });
    const { from, to } = await pair(stack.call, `${sink.url}/p`);
    await send(stack.call, from, to, 'third time lucky');
    const reqs = await sink.waitFor((r) => r.length >= 3);
    const [a, b, c] = reqs;
    if (!a || !b || !c) throw new Error('setup');
    const id = a.headers['webhook-id'];
    expect([b, c].map((r) => r.headers['webhook-id'])).to.deep.equal([id, id]);
    expect(c.body).to.equal(a.body);
    const attempts = await eventually(async () => {
      const rows = await listAttempts(stack.db, { device_id: to.deviceId });
      return rows.length === 3 && rows;
    });
    expect(attempts.map((r) => [r.attempt, r.status_code, r.outcome, r.retry_in_ms])).to.deep.equal([
      [1, 500, 'retry', 100],
      [2, 500, 'retry', 200],
      [3, 200, 'delivered', null],
    ]);
    // The broker held each retry at least as long as decided (TTL tiers never release early).
    expect(b.at - a.at).to.be.at.least(100 - 25);
    expect(c.at - b.at).to.be.at.least(200 - 25);
    expect((await stack.call('GET', '/api/messages', { token: to.token })).body.events).to.deep.equal([]);
  });

  it('when the sink answers 410, then the address is cleared and the event waits for pull', async () => {
    sink = await startSink({ script: [{ status: 410 }] });
    const { from, to } = await pair(stack.call, `${sink.url}/gone`);
    const messageId = await send(stack.call, from, to, 'gone but kept');
    await sink.waitFor((r) => r.length >= 1);
    await eventually(
      async () => {
        const devices = await stack.call('GET', '/api/devices', { token: to.token });
        return devices.body.devices[0].has_address === false;
      },
      5_000,
      'address cleared',
    );
    const [attempt] = await listAttempts(stack.db, { device_id: to.deviceId });
    expect(attempt?.outcome).to.equal('gone');
    const pull = await stack.call('GET', '/api/messages', { token: to.token });
    expect(pull.body.events.map((e: { message_id: string }) => e.message_id)).to.deep.equal([messageId]);
    expect(decrypt(to, pull.body.events[0])).to.equal('gone but kept');
  });

  it('when the sink answers 503 with Retry-After: 1, then the next attempt waits that second instead of the backoff', async () => {
    sink = await startSink({ script: [{ status: 503, retryAfter: '1' }] });
    const { from, to } = await pair(stack.call, `${sink.url}/busy`);
    await send(stack.call, from, to, 'patience');
    const [a, b] = await sink.waitFor((r) => r.length >= 2);
    if (!a || !b) throw new Error('setup');
    expect(b.at - a.at).to.be.at.least(1_000 - 25);
    const rows = await eventually(async () => {
      const r = await listAttempts(stack.db, { device_id: to.deviceId });
      return r.length === 2 && r;
    });
    expect(rows.map((r) => [r.status_code, r.outcome, r.retry_in_ms])).to.deep.equal([
      [503, 'retry', 1_000],
      [200, 'delivered', null],
    ]);
  });

  it('when the sink answers 302, then the redirect is not followed and the same address is retried', async () => {
    sink = await startSink({ script: [{ status: 302, location: '/elsewhere' }] });
    const { from, to } = await pair(stack.call, `${sink.url}/here`);
    await send(stack.call, from, to, 'no detours');
    const reqs = await sink.waitFor((r) => r.length >= 2);
    expect(reqs.map((r) => r.path)).to.deep.equal(['/here', '/here']);
    const rows = await eventually(async () => {
      const r = await listAttempts(stack.db, { device_id: to.deviceId });
      return r.length === 2 && r;
    });
    expect(rows.map((r) => [r.status_code, r.outcome])).to.deep.equal([
      [302, 'retry'],
      [200, 'delivered'],
    ]);
  });

  it('when a device logs out, misses messages and logs in again with an address, then it gets what was queued in seq order', async () => {
    sink = await startSink();
    const { from, to } = await pair(stack.call, null);
    expect((await stack.call('POST', '/api/logout', { token: to.token })).status).to.equal(204);
    const ids = [];
    for (const text of ['while', 'you', 'were', 'away']) ids.push(await send(stack.call, from, to, text));
    const back = await login(
      stack.call,
      to,
      { device_id: to.deviceId, user_address: `${sink.url}/back` },
      to.keys,
    );
    const reqs = await sink.waitFor((r) => new Set(r.map((q) => q.headers['webhook-id'])).size >= 4);
    const events = new Map(reqs.map((r) => [r.json().id, r.json()]));
    const bySeq = [...events.values()].sort((x, y) => x.seq - y.seq);
    expect(bySeq.map((e) => e.message_id)).to.deep.equal(ids);
    expect(bySeq.map((e) => decrypt(back, e))).to.deep.equal(['while', 'you', 'were', 'away']);
  });

  it('when a device without an address sets one, then what was queued meanwhile is pushed', async () => {
    sink = await startSink();
    const { from, to } = await pair(stack.call, null);
    const ids = [await send(stack.call, from, to, 'one'), await send(stack.call, from, to, 'two')];
    const patch = await stack.call('PATCH', '/api/devices/current', {
      token: to.token,
      body: { user_address: `${sink.url}/new` },
    });
    expect(patch.status).to.equal(200);
    const reqs = await sink.waitFor((r) => new Set(r.map((q) => q.headers['webhook-id'])).size >= 2);
    expect([...new Set(reqs.map((r) => r.json().message_id))].sort()).to.deep.equal([...ids].sort());
    expect(reqs.every((r) => r.path === '/new')).to.equal(true);
  });

  it('when the sink does not answer within the total timeout, then the attempt counts as a timeout and is retried', async () => {
    sink = await startSink({ script: [{ status: 200, delayMs: 2_500 }] });
    const { from, to } = await pair(stack.call, `${sink.url}/slow`);
    await send(stack.call, from, to, 'slowly');
    const rows = await eventually(async () => {
      const r = await listAttempts(stack.db, { device_id: to.deviceId });
      return r.length === 2 && r;
    });
    expect(rows.map((r) => [r.status_code, r.error_class, r.outcome])).to.deep.equal([
      [null, 'timeout', 'retry'],
      [200, null, 'delivered'],
    ]);
    expect(rows[0]?.duration_ms).to.be.within(900, 2_400);
  });

  it('when nothing listens at the address, then the attempt is a connection error and is retried until the address goes away', async () => {
    const closed = await startSink();
    await closed.close();
    const { from, to } = await pair(stack.call, `${closed.url}/nobody`);
    await send(stack.call, from, to, 'anyone?');
    const rows = await eventually(async () => {
      const r = await listAttempts(stack.db, { device_id: to.deviceId });
      return r.length >= 2 && r;
    });
    expect(rows.slice(0, 2).map((r) => [r.attempt, r.error_class, r.outcome])).to.deep.equal([
      [1, 'connection', 'retry'],
      [2, 'connection', 'retry'],
    ]);
    // Logging out clears the address: the pending retries find none and stop.
    expect((await stack.call('POST', '/api/logout', { token: to.token })).status).to.equal(204);
  });
});
