import { connect } from 'node:net';
import { expect } from 'chai';
import WebSocket from 'ws';
import { client } from '../helpers/http.ts';
import { decrypt, envelopesFor, keyOf, person } from '../helpers/people.ts';
import {
  dropBrokerConnection,
  eventually,
  type RelayedListener,
  StreamClient,
  sendText,
  startRelayedListener,
} from './helpers.ts';

describe('live stream across two listeners', () => {
  let a: RelayedListener;
  let b: RelayedListener;
  let callA: ReturnType<typeof client>;
  let callB: ReturnType<typeof client>;
  const sockets: StreamClient[] = [];
  const open = (base: string, opts: ConstructorParameters<typeof StreamClient>[1] = {}) => {
    const s = new StreamClient(base, opts);
    sockets.push(s);
    return s;
  };

  before(async () => {
    a = await startRelayedListener({ INSTANCE_ID: 'stream-test-a' });
    b = await startRelayedListener({ INSTANCE_ID: 'stream-test-b' });
    callA = client(a.url);
    callB = client(b.url);
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.ws.terminate();
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  it('when a device connects, then it first gets its backlog in seq order and can decrypt it', async () => {
    const [alice] = await person(callA);
    const [bob] = await person(callA);
    if (!alice || !bob) throw new Error('setup');
    for (const text of ['one', 'two', 'three']) await sendText(callA, alice, [bob], text);
    const s = open(b.url, { token: bob.token });
    const events = await s.waitEvents(3);
    expect(events.map((e) => decrypt(bob, e))).to.deep.equal(['one', 'two', 'three']);
    expect(events.map((e) => e.seq)).to.deep.equal([...events.map((e) => e.seq)].sort((x, y) => x - y));
    expect(events.every((e) => e.from.username === alice.username)).to.equal(true);
  });

  it('when the sender is on listener A and the socket on listener B, then the event arrives live on B', async () => {
    const [alice] = await person(callA);
    const [bob] = await person(callA);
    if (!alice || !bob) throw new Error('setup');
    const s = open(b.url, { token: bob.token });
    await s.opened;
    await eventually('socket registered on B', () => b.stream.size > 0);
    // Past the backlog read: anything from here on can only come as a live wake-up through RabbitMQ.
    await sendText(callA, alice, [bob], 'live hello');
    const [event] = await s.waitEvents(1);
    expect(decrypt(bob, event)).to.equal('live hello');
    await sendText(callA, alice, [bob], 'second');
    const events = await s.waitEvents(2);
    expect(events.map((e) => decrypt(bob, e))).to.deep.equal(['live hello', 'second']);
    expect(events[1].seq).to.be.greaterThan(events[0].seq);
  });

  it("when RabbitMQ drops listener B's connection, then B reconnects, re-binds and its socket gets what was sent meanwhile", async function () {
    this.timeout(60_000);
    const [alice] = await person(callA);
    const [bob] = await person(callA);
    if (!alice || !bob) throw new Error('setup');
    const s = open(b.url, { token: bob.token });
    await s.opened;
    await eventually('socket registered on B', () => b.stream.size > 0);
    expect(await dropBrokerConnection('listener stream-test-b')).to.equal(1);
    // Published while B has no queue: this wake-up is lost; the re-read after reconnecting finds it.
    await sendText(callA, alice, [bob], 'during the outage');
    expect(decrypt(bob, (await s.waitEvents(1, 20_000))[0])).to.equal('during the outage');
    await sendText(callA, alice, [bob], 'after the outage');
    expect(decrypt(bob, (await s.waitEvents(2))[1])).to.equal('after the outage');
  });

  it('when a message is edited, receipted and deleted and a group is made, then every event type arrives on the stream', async () => {
    const [alice] = await person(callA);
    const [bob] = await person(callA);
    if (!alice || !bob) throw new Error('setup');
    const bobS = open(b.url, { token: bob.token });
    const aliceS = open(a.url, { token: alice.token });
    await Promise.all([bobS.opened, aliceS.opened]);
    await eventually('both sockets registered', () => a.stream.size > 0 && b.stream.size > 0);
    const id = await sendText(callA, alice, [bob], 'original');
    await bobS.waitEvents(1);
    const edit = await callA('PUT', `/api/messages/${id}`, {
      token: alice.token,
      body: { envelopes: envelopesFor(alice, [keyOf(bob)], 'edited') },
    });
    expect(edit.status, JSON.stringify(edit.body)).to.equal(200);
    const edited = (await bobS.waitEvents(2))[1];
    expect(edited).to.include({ type: 'message.edited', message_id: id });
    expect(decrypt(bob, edited)).to.equal('edited');
    const receipt = await callB('POST', `/api/messages/${id}/receipts`, {
      token: bob.token,
      body: { type: 'read' },
    });
    expect(receipt.status, JSON.stringify(receipt.body)).to.equal(204);
    expect((await aliceS.waitEvents(1))[0]).to.include({ type: 'receipt', receipt: 'read', message_id: id });
    expect((await callA('DELETE', `/api/messages/${id}`, { token: alice.token })).status).to.equal(204);
    expect((await bobS.waitEvents(3))[2]).to.include({ type: 'message.deleted', message_id: id });
    const group = await callA('POST', '/api/groups', {
      token: alice.token,
      body: { name: 'streamers', members: [bob.username] },
    });
    expect(group.status, JSON.stringify(group.body)).to.equal(201);
    expect((await bobS.waitEvents(4))[3]).to.include({
      type: 'group.updated',
      group_id: group.body.group_id,
    });
    expect((await aliceS.waitEvents(2))[1]).to.include({
      type: 'group.updated',
      group_id: group.body.group_id,
    });
  });

  it('when the client acks over the socket, then pull is empty', async () => {
    const [alice] = await person(callA);
    const [bob] = await person(callA);
    if (!alice || !bob) throw new Error('setup');
    await sendText(callA, alice, [bob], 'ack me');
    await sendText(callA, alice, [bob], 'and me');
    const s = open(b.url, { token: bob.token });
    const events = await s.waitEvents(2);
    s.send({ type: 'ack', up_to: events[1].seq });
    await eventually('inbox empty after ack', async () => {
      const pull = await callA('GET', '/api/messages', { token: bob.token });
      return pull.status === 200 && pull.body.events.length === 0;
    });
    // Still open and serving: a later event still arrives on the same socket.
    await sendText(callA, alice, [bob], 'after ack');
    expect(decrypt(bob, (await s.waitEvents(3))[2])).to.equal('after ack');
  });

  it('when the Authorization header is bad or missing its token, then the upgrade is refused with 401 JSON', async () => {
    for (const authorization of ['Bearer not-a-real-token-at-all-xxxxxxxx', 'Bearer', 'Basic abc']) {
      const ws = new WebSocket(`${a.url.replace('http', 'ws')}/api/stream`, { headers: { authorization } });
      const [, res] = (await new Promise((resolve, reject) => {
        ws.on('unexpected-response', (req, r) => resolve([req, r]));
        ws.on('open', () => reject(new Error('upgraded with a bad token')));
        ws.on('error', () => {});
      })) as [unknown, import('node:http').IncomingMessage];
      expect(res.statusCode).to.equal(401);
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      expect(JSON.parse(Buffer.concat(chunks).toString())).to.include({ error: 'unauthorized' });
      ws.terminate();
    }
  });

  it('when there is no header, then a first auth frame authenticates, and no frame in time closes 4401', async () => {
    const [alice] = await person(callA);
    const [bob] = await person(callA);
    if (!alice || !bob) throw new Error('setup');
    await sendText(callA, alice, [bob], 'by frame');
    const s = open(b.url);
    await s.opened;
    s.send({ type: 'auth', token: bob.token });
    expect(decrypt(bob, (await s.waitEvents(1))[0])).to.equal('by frame');

    const bad = open(b.url);
    await bad.opened;
    bad.send({ type: 'auth', token: 'wrong-token-wrong-token-wrong' });
    expect(await bad.closed).to.deep.equal({ code: 4401, reason: 'invalid or expired token' });

    const silent = open(b.url);
    expect(await silent.closed).to.deep.equal({ code: 4401, reason: 'authentication timeout' });

    const early = open(b.url);
    await early.opened;
    early.send({ type: 'ack', up_to: 1 });
    expect(await early.closed).to.deep.equal({ code: 1008, reason: 'authenticate first' });
  });

  it('when a client sends bad frames, then its socket is closed with a reason and the listener keeps serving', async () => {
    const [bob] = await person(callA);
    if (!bob) throw new Error('setup');
    const cases: [string | Buffer, number, string][] = [
      ['{not json', 1008, 'frame is not valid JSON'],
      [JSON.stringify({ type: 'subscribe' }), 1008, 'invalid frame: type'],
      [JSON.stringify({ type: 'ack', up_to: 'x' }), 1008, 'invalid frame: up_to'],
      [JSON.stringify({ type: 'ack', up_to: -1 }), 1008, 'invalid frame: up_to'],
      [JSON.stringify({ type: 'ack', up_to: 1, extra: true }), 1008, 'invalid frame: unknown field extra'],
      [JSON.stringify({ type: 'auth', token: bob.token }), 1008, 'already authenticated'],
      [JSON.stringify([1, 2]), 1008, 'invalid frame: type'],
      [
        JSON.stringify({ type: 'ack', up_to: 1, ['é'.repeat(200)]: 1 }),
        1008,
        'invalid frame: unknown field \\?',
      ],
      [Buffer.from([1, 2, 3]), 1003, 'binary frames are not accepted'],
      ['x'.repeat(64 * 1024 + 1), 1009, ''],
    ];
    for (const [frame, code, reason] of cases) {
      const s = open(a.url, { token: bob.token });
      await s.opened;
      s.ws.send(frame);
      const closed = await s.closed;
      expect(closed.code, String(frame).slice(0, 40)).to.equal(code);
      if (reason) expect(closed.reason, String(frame).slice(0, 40)).to.match(new RegExp(`^${reason}`));
    }
    expect((await callA('GET', '/api/health')).status).to.equal(200);
    const ok = open(a.url, { token: bob.token });
    await ok.opened;
    await eventually('socket registered', () => a.stream.size > 0);
  });

  it('when /api/stream is requested without an upgrade, then it answers 426 JSON', async () => {
    const res = await callB('GET', '/api/stream');
    expect(res.status).to.equal(426);
    expect(res.body).to.include({ error: 'upgrade_required' });
    expect(res.headers.upgrade).to.equal('websocket');
    // Upgrades anywhere but /api/stream are refused with JSON, never left hanging.
    const { port } = new URL(a.url);
    const sock = connect(Number(port), '127.0.0.1');
    sock.end('GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    let raw = '';
    for await (const chunk of sock) raw += String(chunk);
    expect(raw).to.match(/^HTTP\/1\.1 404 /);
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).to.include({ error: 'not_found' });
  });

  it('when a stream stays open, then it keeps its session alive like requests do', async () => {
    const [bob] = await person(callA);
    if (!bob) throw new Error('setup');
    const s = open(b.url, { token: bob.token });
    await s.opened;
    // As if the last request had been 29 days and 23 hours ago.
    await b.deps
      .db('sessions')
      .where({ device_id: bob.deviceId })
      .update({
        expires_at: b.deps.db.raw(`now() + interval '1 hour'`),
      });
    const expiry = async () =>
      ((await b.deps.db('sessions').where({ device_id: bob.deviceId }).first()) as { expires_at: Date })
        .expires_at;
    await eventually(
      'extended by the heartbeat',
      async () => (await expiry()).getTime() > Date.now() + 29 * 86_400_000,
    );
    expect(s.ws.readyState).to.equal(WebSocket.OPEN);
  });

  it('when the session is ended by logout, then its open stream is closed', async () => {
    const [bob] = await person(callA);
    if (!bob) throw new Error('setup');
    const s = open(b.url, { token: bob.token });
    await s.opened;
    expect((await callA('POST', '/api/logout', { token: bob.token })).status).to.equal(204);
    expect(await s.closed).to.deep.equal({ code: 4401, reason: 'session ended' });
  });
});
