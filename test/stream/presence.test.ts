import { expect } from 'chai';
import { createDb } from '../../common/db/index.ts';
import { testConfig } from '../helpers/env.ts';
import { client } from '../helpers/http.ts';
import { startListener } from '../helpers/listener.ts';
import { person, uniqueName } from '../helpers/people.ts';
import {
  eventually,
  presence,
  type RelayedListener,
  StreamClient,
  sendText,
  startRelayedListener,
} from './helpers.ts';

describe('presence and socket hygiene', () => {
  let a: RelayedListener;
  let b: RelayedListener;
  let call: ReturnType<typeof client>;
  const sockets: StreamClient[] = [];
  const open = (base: string, token: string) => {
    const s = new StreamClient(base, { token });
    sockets.push(s);
    return s;
  };

  before(async () => {
    a = await startRelayedListener({ INSTANCE_ID: 'presence-test-a' });
    // B closes a socket once 1 KiB is queued and not drained within 300 ms; it pings too rarely
    // for dead-peer detection to be what drops a slow reader there.
    b = await startRelayedListener({
      INSTANCE_ID: 'presence-test-b',
      STREAM_PING_INTERVAL_MS: '600000',
      STREAM_MAX_BUFFERED_BYTES: '1024',
      STREAM_SEND_TIMEOUT_MS: '300',
    });
    call = client(a.url);
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.ws.terminate();
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  it('when a device opens a stream on any listener, then its user is online everywhere until the last stream closes', async () => {
    const [alice] = await person(call);
    const [bob1, bob2] = await person(call, 2);
    const [carol] = await person(call);
    if (!alice || !bob1 || !bob2 || !carol) throw new Error('setup');
    const who = [bob1.username, carol.username, uniqueName('nobody')];
    await sendText(call, bob1, [alice, bob2], 'makes us contacts');
    expect(await presence(call, alice, who)).to.deep.equal([]);
    const s1 = open(b.url, bob1.token);
    const s2 = open(a.url, bob2.token);
    await eventually('bob online', async () => (await presence(call, alice, who)).includes(bob1.username));
    expect(await presence(client(b.url), alice, who)).to.deep.equal([bob1.username]);
    await s1.close();
    // bob's other device still streams on A
    expect(await presence(call, alice, who)).to.deep.equal([bob1.username]);
    await s2.close();
    await eventually('bob offline', async () => (await presence(call, alice, who)).length === 0);
  });

  it('when a client stops answering pings, then the listener drops it and the user goes offline', async () => {
    const [alice] = await person(call);
    const [bob] = await person(call);
    if (!alice || !bob) throw new Error('setup');
    await sendText(call, alice, [bob], 'makes us contacts');
    const s = open(a.url, bob.token);
    await eventually('bob online', async () => (await presence(call, alice, [bob.username])).length === 1);
    // A peer that vanished: nothing it receives is processed, so no pong ever comes back.
    (s.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await eventually('bob offline', async () => (await presence(call, alice, [bob.username])).length === 0);
    expect(a.stream.size).to.equal(0);
  });

  it('when a client does not read and its send buffer passes the cap, then the listener closes it (4008)', async function () {
    this.timeout(60_000);
    const [alice] = await person(call);
    const [bob] = await person(call);
    if (!alice || !bob) throw new Error('setup');
    const s = open(b.url, bob.token);
    await s.opened;
    (s.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    // ~16 MiB of events: more than the kernel's loopback buffers absorb, so ws's own buffer must grow.
    const big = 'x'.repeat(60 * 1024);
    for (let i = 0; i < 200 && s.ws.readyState === s.ws.OPEN && b.stream.size > 0; i++) {
      await sendText(call, alice, [bob], big);
    }
    await eventually('slow socket dropped', () => b.stream.size === 0, 20_000);
    (s.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    // The 4008 close frame sits behind the unread bytes, so the client usually sees the reset (1006).
    expect([4008, 1006]).to.include((await s.closed).code);
    await eventually('bob offline', async () => (await presence(call, alice, [bob.username])).length === 0);
    // Nothing was lost: the undelivered events are still in the inbox for the next connection.
    const pull = await call('GET', '/api/messages?limit=500', { token: bob.token });
    expect(pull.body.events.length).to.be.greaterThan(0);
  });

  it('when presence is asked with bad input, then 400; without a token, 401', async () => {
    const [alice] = await person(call);
    if (!alice) throw new Error('setup');
    const many = Array.from({ length: 101 }, (_, i) => `user${i}`).join(',');
    for (const q of [
      '',
      '?users=',
      '?users=a',
      '?users=ok_name,,x',
      `?users=${many}`,
      '?users=abc&other=1',
    ]) {
      const res = await call('GET', `/api/presence${q}`, { token: alice.token });
      expect(res.status, q).to.equal(400);
      expect(res.body.error, q).to.equal('invalid_request');
    }
    expect((await call('GET', '/api/presence?users=abc')).status).to.equal(401);
    const hundred = Array.from({ length: 100 }, (_, i) => `user${i}`).join(',');
    expect((await call('GET', `/api/presence?users=${hundred}`, { token: alice.token })).body).to.deep.equal({
      online: [],
    });
  });
});

describe('stream shutdown', () => {
  it('when a listener shuts down gracefully, then its sockets get 1001 and their presence rows go at once', async () => {
    const db = createDb(testConfig().DATABASE_URL, 1);
    const listener = await startListener({ INSTANCE_ID: 'graceful-test' });
    let closed = false;
    try {
      const [bob] = await person(client(listener.url));
      if (!bob) throw new Error('setup');
      const s = new StreamClient(listener.url, { token: bob.token });
      const rows = () =>
        db('stream_presence').where({ device_id: bob.deviceId }).count<{ n: string }[]>('* as n');
      await eventually('presence row written', async () => Number((await rows())[0]?.n) === 1);
      closed = true;
      await listener.close();
      expect(await s.closed).to.deep.equal({ code: 1001, reason: 'server shutting down' });
      // Expiry is 30 s here: only the shutdown itself can have removed the row.
      expect(Number((await rows())[0]?.n)).to.equal(0);
    } finally {
      if (!closed) await listener.close();
      await db.destroy();
    }
  });
});
