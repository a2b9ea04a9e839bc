import { once } from 'node:events';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Agent } from 'undici';
import { ApiError, Messenger, type Received } from '../../common/client/index.ts';
import { client } from '../helpers/http.ts';
import { startListener } from '../helpers/listener.ts';
import { envelopesFor, person, uniqueName } from '../helpers/people.ts';
import { type DeliveryStack, startDeliveryStack } from '../helpers/sender.ts';
import { newClient, newUser, PASSWORD } from './helpers.ts';

async function inbox(m: Messenger): Promise<Received[]> {
  const all: Received[] = [];
  for await (const page of m.pages({ limit: 2 })) {
    all.push(...page.events);
    if (page.events.length) await m.ack(page.next_after);
  }
  return all;
}

/** A TCP relay to `port` whose connections can be cut, like a network drop. */
async function tcpProxy(port: number) {
  const sockets = new Set<Socket>();
  const server = createServer((c) => {
    const upstream = connect(port, '127.0.0.1');
    for (const s of [c, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    c.pipe(upstream).pipe(c);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port: own } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${own}`,
    cut: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('client SDK against a real listener', () => {
  let stack: DeliveryStack;
  let listener: DeliveryStack['listener'];
  before(async function () {
    this.timeout(60_000); // a fresh database, migrated, plus a relay
    stack = await startDeliveryStack();
    listener = stack.listener;
  });
  after(() => stack?.close());

  it('when a user is in more groups than one page holds, then groups() returns all of them', async function () {
    this.timeout(60_000);
    const [me] = await newUser(listener.url, 1);
    if (!me) throw new Error('setup');
    const ids = [];
    for (let i = 0; i < 120; i++) ids.push(await me.createGroup(uniqueName('g'), []));
    expect((await me.groups()).map((g) => g.group_id).sort()).to.deep.equal(ids.sort());
  });

  it("when alice sends text to bob, then both of bob's devices and alice's other device decrypt it", async () => {
    const [a1, a2] = await newUser(listener.url, 2);
    const [b1, b2] = await newUser(listener.url, 2);
    if (!a1 || !a2 || !b1 || !b2) throw new Error('setup');
    const sent = await a1.send(b1.identity.username, 'hello bob');
    expect(sent.message_id).to.be.a('string');
    for (const d of [b1, b2, a2]) {
      const events = await inbox(d);
      expect(events.map((e) => e.content?.text)).to.deep.equal(['hello bob']);
      expect(events[0]?.from.username).to.equal(a1.identity.username);
      expect(events[0]?.message_id).to.equal(sent.message_id);
      expect(await inbox(d), 'acked events stay gone').to.deep.equal([]);
    }
    expect(await inbox(a1), 'the sending device gets no copy').to.deep.equal([]);
  });

  it('when bytes are sent, then the receiver gets the same bytes back', async () => {
    const [a] = await newUser(listener.url, 1);
    const [b] = await newUser(listener.url, 1);
    if (!a || !b) throw new Error('setup');
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    await a.send(b.identity.username, bytes);
    const [e] = await inbox(b);
    expect(e?.content?.text).to.equal(null);
    expect([...(e?.content?.data ?? [])]).to.deep.equal([...bytes]);
  });

  it('when bob adds and removes devices after alice cached his directory, then the 409 is absorbed and the new device reads', async () => {
    const [a] = await newUser(listener.url, 1);
    const [b1, b2] = await newUser(listener.url, 2);
    if (!a || !b1 || !b2) throw new Error('setup');
    await a.send(b1.identity.username, 'first');
    const b3 = await newClient(listener.url);
    await b3.login(b1.identity.username, 'correct horse battery');
    await b1.removeDevice(b2.identity.deviceId);
    // alice's cache still lists b2 and lacks b3: the server answers 409 and the SDK retries once.
    await a.send(b1.identity.username, 'second');
    expect((await inbox(b3)).map((e) => e.content?.text)).to.deep.equal(['second']);
    expect((await inbox(b1)).map((e) => e.content?.text)).to.deep.equal(['first', 'second']);
  });

  it('when a send is retried with the same client_message_id, then it is stored once', async () => {
    const [a] = await newUser(listener.url, 1);
    const [b] = await newUser(listener.url, 1);
    if (!a || !b) throw new Error('setup');
    const first = await a.send(b.identity.username, 'once', { clientMessageId: 'retry-me' });
    const again = await a.send(b.identity.username, 'once', { clientMessageId: 'retry-me' });
    expect(again.message_id).to.equal(first.message_id);
    expect(await inbox(b)).to.have.length(1);
  });

  it('when a profile is saved and the device logs in again, then it resumes the same device and reads its backlog', async () => {
    const [a] = await newUser(listener.url, 1);
    const [b] = await newUser(listener.url, 1);
    if (!a || !b) throw new Error('setup');
    const saved = JSON.parse(JSON.stringify(b.toProfile()));
    await b.logout();
    await a.send(b.identity.username, 'while you were away');
    const back = newClient(listener.url, saved);
    expect(await back.pull().catch((e: unknown) => (e as ApiError).status)).to.equal(401);
    const res = await back.login(saved.username, 'correct horse battery');
    expect(res.device_id).to.equal(saved.device_id);
    expect((await inbox(back)).map((e) => e.content?.text)).to.deep.equal(['while you were away']);
  });

  it('when a request fails, then it rejects with an ApiError carrying status and code', async () => {
    const [a] = await newUser(listener.url, 1);
    if (!a) throw new Error('setup');
    const err = await a.send('nobody_here_at_all', 'hi').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ApiError);
    expect((err as ApiError).status).to.equal(404);
    expect((err as ApiError).error).to.equal('not_found');
    const bad = await a.pull({ limit: 0 }).catch((e: unknown) => e);
    expect((bad as ApiError).status).to.equal(400);
    expect((bad as ApiError).details).to.be.an('array');
  });

  it('when a page limit is smaller than the backlog, then the pages iterator walks all of it in order', async () => {
    const [a] = await newUser(listener.url, 1);
    const [b] = await newUser(listener.url, 1);
    if (!a || !b) throw new Error('setup');
    for (const t of ['1', '2', '3', '4', '5']) await a.send(b.identity.username, t);
    const seen: string[] = [];
    let pages = 0;
    for await (const page of b.pages({ limit: 2 })) {
      pages++;
      seen.push(...page.events.map((e) => e.content?.text ?? '?'));
    }
    expect(seen).to.deep.equal(['1', '2', '3', '4', '5']);
    expect(pages).to.equal(3);
  });

  it('when the stream is open, then live events arrive decrypted and are acked', async () => {
    const [a] = await newUser(listener.url, 1);
    const [b] = await newUser(listener.url, 1);
    if (!a || !b) throw new Error('setup');
    await a.send(b.identity.username, 'backlog');
    const stop = new AbortController();
    const got: string[] = [];
    for await (const e of b.stream({ signal: stop.signal })) {
      got.push(e.content?.text ?? '?');
      if (got.length === 1) await a.send(b.identity.username, 'live');
      if (got.length === 2) stop.abort();
    }
    expect(got).to.deep.equal(['backlog', 'live']);
    // Acks are sent over the socket as it closes; pull until the server has applied them.
    for (let i = 0; i < 50 && (await b.pull()).events.length; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect((await b.pull()).events).to.deep.equal([]);
  });

  it('when a for-await over stream() is left with break, then the event in hand counts as handled: acked, not delivered again', async () => {
    const [a] = await newUser(listener.url, 1);
    const [b] = await newUser(listener.url, 1);
    if (!a || !b) throw new Error('setup');
    await a.send(b.identity.username, 'first');
    await a.send(b.identity.username, 'second');
    for await (const e of b.stream()) {
      expect(e.content?.text).to.equal('first');
      break;
    }
    expect((await b.pull()).events.map((e) => e.content?.text)).to.deep.equal(['second']);
    const seen: (string | null | undefined)[] = [];
    for await (const e of b.stream()) {
      seen.push(e.content?.text);
      break;
    }
    expect(seen, 'the next stream starts after the event the last loop left on').to.deep.equal(['second']);
    expect((await b.pull()).events).to.deep.equal([]);
  });

  it('when a client is made with a profile file, then every run resumes the same device instead of adding one', async () => {
    const [a] = await newUser(listener.url, 1);
    if (!a) throw new Error('setup');
    const dir = await mkdtemp(join(tmpdir(), 'messenger-sdk-profile-'));
    try {
      const file = join(dir, 'nested', 'me.json');
      const ids: string[] = [];
      for (let run = 0; run < 3; run++) {
        const m = new Messenger({ baseUrl: listener.url, profile: file });
        expect(m.loggedIn).to.equal(run > 0);
        ids.push((await m.login(a.identity.username, PASSWORD)).device_id);
      }
      expect(new Set(ids).size).to.equal(1);
      expect(((await stat(file)).mode & 0o777).toString(8)).to.equal('600');
      expect((await a.devices()).map((d) => d.device_id)).to.have.members([a.identity.deviceId, ids[0]]);
      const again = new Messenger({ baseUrl: listener.url, profile: file });
      await again.logout();
      expect(new Messenger({ baseUrl: listener.url, profile: file }).loggedIn, 'logout is saved').to.equal(
        false,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('when the connection drops mid-stream, then the iterator reconnects and resumes without loss or repeats', async () => {
    const [a] = await newUser(listener.url, 1);
    const [b] = await newUser(listener.url, 1);
    if (!a || !b) throw new Error('setup');
    const proxy = await tcpProxy(Number(new URL(listener.url).port));
    const viaProxy = Messenger.fromProfile(b.toProfile(), { baseUrl: proxy.url });
    const states: string[] = [];
    const stop = new AbortController();
    const got: string[] = [];
    await a.send(b.identity.username, 'before the drop');
    try {
      for await (const e of viaProxy.stream({
        signal: stop.signal,
        minBackoffMs: 50,
        onState: (s) => states.push(s),
      })) {
        got.push(e.content?.text ?? '?');
        if (got.length === 1) {
          proxy.cut();
          await a.send(b.identity.username, 'after the drop');
        }
        if (got.length === 2) stop.abort();
      }
    } finally {
      await proxy.close();
    }
    expect(got).to.deep.equal(['before the drop', 'after the drop']);
    expect(states.slice(0, 3)).to.deep.equal(['open', 'closed', 'open']);
    expect((await b.pull()).events, 'everything handled was acknowledged').to.deep.equal([]);
  });

  it('when the session is gone, then stream() fails with ApiError 401 instead of reconnecting forever', async () => {
    const [b] = await newUser(listener.url, 1);
    if (!b) throw new Error('setup');
    const stale = Messenger.fromProfile(b.toProfile(), { baseUrl: listener.url });
    await b.logout();
    const err = await (async () => {
      for await (const _ of stale.stream({ minBackoffMs: 50 })) throw new Error('no event expected');
    })().catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ApiError);
    expect((err as ApiError).status).to.equal(401);
  });

  it('when the server answers 429 with a short Retry-After, then the SDK waits and retries; with retries off it reports it', async () => {
    const locking = await startListener({ LOGIN_MAX_FAILURES: '1', LOGIN_LOCK_SECONDS: '3' });
    const agent = new Agent();
    try {
      const name = uniqueName();
      let sent = 0;
      const counting = agent.compose((dispatch) => (o, handler) => {
        sent++;
        return dispatch(o, handler);
      });
      const impatient = new Messenger({ baseUrl: locking.url, retries: 0 });
      await impatient.register(name, PASSWORD);
      await impatient.login(name, 'not the password').catch(() => {}); // locks the name for 3 s
      const limited = await impatient.login(name, PASSWORD).catch((e: unknown) => e);
      expect((limited as ApiError).status).to.equal(429);
      expect((limited as ApiError).retryAfter).to.be.within(1, 3);
      await impatient.login(name, 'wrong again').catch(() => {}); // 429 while locked, or locks anew
      const patient = new Messenger({ baseUrl: locking.url, dispatcher: counting });
      const res = await patient.login(name, PASSWORD);
      expect(res.device_id).to.be.a('string');
      expect(sent, 'one 429, then the retry that succeeded').to.equal(2);
    } finally {
      await agent.close();
      await locking.close();
    }
  });

  it('when a plain client boxes a bare string (no SDK payload), then the SDK reads it as text', async () => {
    const call = client(listener.url);
    const [raw] = await person(call, 1);
    const [b] = await newUser(listener.url, 1);
    if (!raw || !b) throw new Error('setup');
    const dir = await call('GET', `/api/users/${b.identity.username}`, { token: raw.token });
    const res = await call('POST', '/api/messages', {
      token: raw.token,
      body: {
        to: b.identity.username,
        envelopes: envelopesFor(raw, dir.body.devices, '{"not":"a payload"}'),
      },
    });
    expect(res.status).to.equal(201);
    const [e] = (await b.pull()).events;
    expect(e?.content).to.deep.equal({ text: '{"not":"a payload"}', data: null, files: [] });
    expect(e?.from.username).to.equal(raw.username);
  });

  it('when bob has a stream open, then presence shows him online, and offline once it closes', async () => {
    const [a] = await newUser(listener.url, 1);
    const [b] = await newUser(listener.url, 1);
    if (!a || !b) throw new Error('setup');
    const bob = b.identity.username;
    // Presence is visible only between contacts: a message makes them contacts.
    await a.send(bob, 'hello');
    const until = async (want: boolean) => {
      for (let i = 0; i < 200; i++) {
        if ((await a.presence([bob, 'nobody_online_here'])).includes(bob) === want) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`presence never became ${want}`);
    };
    expect(await a.presence([bob])).to.deep.equal([]);
    const stop = new AbortController();
    const streaming = (async () => {
      for await (const _ of b.stream({ signal: stop.signal })) {
      }
    })();
    await until(true);
    stop.abort();
    await streaming;
    await until(false);
  });
});
