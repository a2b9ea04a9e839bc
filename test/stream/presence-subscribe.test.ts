import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { freePort } from '../../scripts/stack/processes.ts';
import { testEnv } from '../helpers/env.ts';
import { type Call, client } from '../helpers/http.ts';
import { startListener, type TestListener } from '../helpers/listener.ts';
import { type Device, person, uniqueName } from '../helpers/people.ts';
import { type Ev, eventually, FAST, presence, StreamClient, sendText } from './helpers.ts';

/** Small grace so offline frames come quickly; the flapping test runs its own listener with a long one. */
const PRESENCE = { ...FAST, PRESENCE_GRACE_MS: '200' };

const framesOf = (s: StreamClient): Ev[] => s.frames.filter((f) => f.type === 'presence');

/** Waits for a presence frame of `username` with `online`, after the first `from` frames. */
async function frame(s: StreamClient, username: string, online: boolean, from = 0, ms = 10_000): Promise<Ev> {
  let found: Ev;
  await eventually(
    `presence frame ${username} ${online ? 'online' : 'offline'}`,
    () => {
      found = framesOf(s)
        .slice(from)
        .find((f) => f.username === username && f.online === online);
      return found !== undefined;
    },
    ms,
  );
  return found;
}

/** Counts the SQL statements a listener's pool runs while `fn` runs (BEGIN/COMMIT included). */
async function countQueries(l: TestListener, fn: () => Promise<void>): Promise<number> {
  let n = 0;
  const count = () => n++;
  l.deps.db.on('query', count);
  try {
    await fn();
  } finally {
    l.deps.db.off('query', count);
  }
  return n;
}

/** A real listener process (listener/main.ts under tsx), to be killed -9 like a crashed one. */
async function spawnListener(instanceId: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'listener/main.ts'], {
    env: testEnv({ ...PRESENCE, PORT: String(port), INSTANCE_ID: instanceId, LOG_LEVEL: 'warn' }),
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    'spawned listener serving',
    async () => (await fetch(`${url}/api/health`).catch(() => null))?.status === 200,
    60_000,
  );
  return { url, child };
}

describe('presence subscriptions across listeners', function () {
  this.timeout(60_000);
  let a: TestListener;
  let b: TestListener;
  let call: Call;
  const sockets: StreamClient[] = [];
  const open = (l: { url: string }, d: Device) => {
    const s = new StreamClient(l.url, { token: d.token });
    sockets.push(s);
    return s;
  };
  /** A user with a stream on `l` subscribed to `names`, once its first answer arrived. */
  const subscriber = async (l: { url: string }, d: Device, names: string[]) => {
    const s = open(l, d);
    await s.opened;
    s.send({ type: 'presence.subscribe', users: names });
    return s;
  };

  before(async () => {
    a = await startListener({ ...PRESENCE, INSTANCE_ID: 'presence-sub-a' });
    b = await startListener({ ...PRESENCE, INSTANCE_ID: 'presence-sub-b' });
    call = client(a.url);
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.ws.terminate();
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  it('when a contact opens and closes a stream on listener B, then a subscriber on A gets offline, online, offline frames', async () => {
    const [alice] = await person(call);
    const [bob] = await person(call);
    if (!alice || !bob) throw new Error('setup');
    await sendText(call, bob, [alice], 'hi');
    const watch = await subscriber(a, alice, [bob.username]);
    const first = await frame(watch, bob.username, false);
    expect(first).to.deep.equal({ type: 'presence', username: bob.username, online: false, since: null });

    const bobStream = open(b, bob);
    const online = await frame(watch, bob.username, true);
    expect(online).to.not.have.property('seq');
    expect(Date.parse(online.since)).to.be.greaterThan(0);
    await bobStream.close();
    const offline = await frame(watch, bob.username, false, 1);
    expect(Date.parse(offline.since)).to.be.at.least(Date.parse(online.since));
    expect(framesOf(watch)).to.have.length(3);
  });

  it('when the listener holding a contact stream is killed -9, then the subscriber gets offline within the expiry bound', async () => {
    const [alice] = await person(call);
    const [bob] = await person(call);
    if (!alice || !bob) throw new Error('setup');
    await sendText(call, alice, [bob], 'hi');
    const doomed = await spawnListener(`presence-doomed-${process.pid}`);
    try {
      const watch = await subscriber(a, alice, [bob.username]);
      await frame(watch, bob.username, false);
      const bobStream = open(doomed, bob);
      await frame(watch, bob.username, true);
      const killedAt = Date.now();
      doomed.child.kill('SIGKILL');
      await bobStream.closed;
      // Expiry 1.5 s, swept every 0.2 s heartbeat: a generous bound, not a timing assertion.
      await frame(watch, bob.username, false, 1, 15_000);
      expect(Date.now() - killedAt).to.be.below(15_000);
      expect(await presence(call, alice, [bob.username])).to.deep.equal([]);
    } finally {
      doomed.child.kill('SIGKILL');
    }
  });

  it('when a non-contact is subscribed by name, then no frame ever names them and GET /api/presence reports them offline while online', async () => {
    const [alice] = await person(call);
    const [carol] = await person(call);
    if (!alice || !carol) throw new Error('setup');
    const nobody = uniqueName('nobody');
    const watch = await subscriber(a, alice, [carol.username, nobody]);
    const carolStream = open(b, carol);
    await carolStream.opened;
    // carol sees herself online: her transition has been announced.
    await eventually(
      'carol online',
      async () => (await presence(call, carol, [carol.username])).length === 1,
    );
    expect(await presence(call, alice, [carol.username, nobody])).to.deep.equal([]);
    await carolStream.close();
    await eventually(
      'carol offline',
      async () => (await presence(call, carol, [carol.username])).length === 0,
    );
    await sleep(500);
    expect(framesOf(watch)).to.deep.equal([]);
  });

  it('when users share a group or a message went either way, then they are contacts: frames and GET show them', async () => {
    const [alice] = await person(call);
    const [grouped] = await person(call);
    const [wroteToAlice] = await person(call);
    const [aliceWrote] = await person(call);
    if (!alice || !grouped || !wroteToAlice || !aliceWrote) throw new Error('setup');
    const created = await call('POST', '/api/groups', {
      token: grouped.token,
      body: { name: 'presence', members: [alice.username] },
    });
    expect(created.status).to.equal(201);
    await sendText(call, wroteToAlice, [alice], 'to alice');
    await sendText(call, alice, [aliceWrote], 'from alice');
    const names = [grouped.username, wroteToAlice.username, aliceWrote.username];
    for (const d of [grouped, wroteToAlice, aliceWrote]) await open(b, d).opened;
    await eventually('all online for alice', async () => (await presence(call, alice, names)).length === 3);
    const watch = await subscriber(a, alice, names);
    for (const n of names) await frame(watch, n, true);
    // And the other way round: each of them sees alice.
    await open(a, alice).opened;
    for (const d of [grouped, wroteToAlice, aliceWrote]) {
      await eventually(
        'alice online for them',
        async () => (await presence(call, d, [alice.username])).length === 1,
      );
    }
  });

  it('when a subscription names 500 users, then answering it and passing on a change stay within a few queries', async () => {
    const [alice] = await person(call);
    const [bob] = await person(call);
    if (!alice || !bob) throw new Error('setup');
    await sendText(call, bob, [alice], 'hi');
    const names = [bob.username, ...Array.from({ length: 499 }, () => uniqueName('n'))];
    // A listener whose heartbeat stays quiet during the test: every query it runs is counted.
    const quiet = await startListener({
      ...PRESENCE,
      PRESENCE_HEARTBEAT_MS: '600000',
      INSTANCE_ID: 'presence-quiet',
    });
    try {
      const s = open(quiet, alice);
      await s.opened;
      await sleep(200); // the stream's own presence row and settle
      const subscribing = await countQueries(quiet, async () => {
        s.send({ type: 'presence.subscribe', users: names });
        await frame(s, bob.username, false);
      });
      // One query answers all 500 names (which are contacts, and their state).
      expect(subscribing).to.equal(1);
      const changing = await countQueries(quiet, async () => {
        open(b, bob);
        await frame(s, bob.username, true);
      });
      // This listener's part of a change: one contacts check for all its subscribers of bob.
      expect(changing).to.equal(1);
    } finally {
      await quiet.close();
    }
  });

  it('when a presence.subscribe frame is bad, then the socket is closed 1008 with a reason and the listener keeps serving', async () => {
    const [alice] = await person(call);
    if (!alice) throw new Error('setup');
    const bad = [
      { type: 'presence.subscribe', users: 'bob_the_user' },
      { type: 'presence.subscribe', users: [42] },
      { type: 'presence.subscribe', users: Array.from({ length: 501 }, (_, i) => `user_${i}`) },
      { type: 'presence.subscribe' },
      { type: 'presence.subscribe', users: [], extra: 1 },
    ];
    for (const f of bad) {
      const s = open(a, alice);
      await s.opened;
      s.send(f);
      const closed = await s.closed;
      expect(closed.code, JSON.stringify(f).slice(0, 60)).to.equal(1008);
      expect(closed.reason).to.match(/^invalid frame/);
    }
    const s = await subscriber(a, alice, [alice.username]);
    await frame(s, alice.username, true);
    s.send({ type: 'presence.subscribe', users: [] });
  });
});

describe('presence flapping', function () {
  this.timeout(60_000);
  let l: TestListener;
  const sockets: StreamClient[] = [];
  before(async () => {
    l = await startListener({ ...FAST, PRESENCE_GRACE_MS: '2000', INSTANCE_ID: 'presence-flap' });
  });
  after(async () => {
    for (const s of sockets.splice(0)) s.ws.terminate();
    await l?.close();
  });

  it('when a contact reconnects within the grace period, then subscribers get no frame; past it, one offline frame', async () => {
    const call = client(l.url);
    const [alice] = await person(call);
    const [bob] = await person(call);
    if (!alice || !bob) throw new Error('setup');
    await sendText(call, alice, [bob], 'hi');
    const watch = new StreamClient(l.url, { token: alice.token });
    sockets.push(watch);
    await watch.opened;
    watch.send({ type: 'presence.subscribe', users: [bob.username] });
    await frame(watch, bob.username, false);
    const first = new StreamClient(l.url, { token: bob.token });
    sockets.push(first);
    await frame(watch, bob.username, true);
    for (let i = 0; i < 3; i++) {
      const before = framesOf(watch).length;
      const closedAt = Date.now();
      await (sockets.at(-1) as StreamClient).close();
      const again = new StreamClient(l.url, { token: bob.token });
      sockets.push(again);
      await again.opened;
      expect(Date.now() - closedAt, 'reconnected within the grace').to.be.below(2_000);
      await sleep(2_500);
      expect(framesOf(watch).length).to.equal(before);
    }
    await (sockets.at(-1) as StreamClient).close();
    await frame(watch, bob.username, false, 2);
    expect(framesOf(watch)).to.have.length(3);
  });
});
