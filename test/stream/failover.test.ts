import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { createDb, type Db } from '../../common/db/index.ts';
import { testConfig } from '../helpers/env.ts';
import { decrypt, person } from '../helpers/people.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { eventually, FAST, presence, StreamClient, sendText } from './helpers.ts';

/** Which listener process holds a device's stream, from the presence rows the listeners write. */
/** The listener holding the device's live socket: the freshest presence row (a killed listener's
 * stale row stays until some listener sweeps it). */
async function holder(db: Db, deviceId: string): Promise<string | undefined> {
  const row = await db('stream_presence')
    .where({ device_id: deviceId })
    .orderBy('heartbeat_at', 'desc')
    .first('instance_id');
  return row?.instance_id;
}

describe('live stream through nginx over two listener processes', function () {
  this.timeout(90_000);
  let stack: TestStack;
  let db: Db;
  let ca: Buffer;
  const sockets: StreamClient[] = [];
  const open = (token: string, localAddress?: string) => {
    const s = new StreamClient(stack.url, { token, ca, ...(localAddress ? { localAddress } : {}) });
    sockets.push(s);
    return s;
  };

  before(async () => {
    stack = await startTestStack({ listeners: 2, envOverrides: FAST, limits: { streamConnections: 3 } });
    ca = readFileSync(stack.certFile);
    db = createDb(testConfig().DATABASE_URL, 2);
  });
  afterEach(() => {
    for (const s of sockets.splice(0)) s.ws.terminate();
  });
  after(async () => {
    await stack?.stop();
    await db?.destroy();
  });

  it('when the listener holding a socket is killed, then presence expires and the client reconnects through nginx to the other and gets what it missed', async () => {
    const { call } = stack;
    const [alice] = await person(call);
    const [bob] = await person(call);
    if (!alice || !bob) throw new Error('setup');

    // Presence is visible only between contacts: a message (either way) makes them contacts.
    await sendText(call, bob, [alice], 'hello');
    const first = open(bob.token);
    await first.opened;
    await eventually('bob online', async () => (await presence(call, alice, [bob.username])).length === 1);
    const instance = await holder(db, bob.deviceId);
    const victim = stack.listeners.findIndex((l) => l.instanceId === instance);
    expect(victim, `stream held by ${instance}`).to.be.at.least(0);

    await sendText(call, alice, [bob], 'before the crash');
    const [live] = await first.waitEvents(1);
    expect(decrypt(bob, live)).to.equal('before the crash');
    first.send({ type: 'ack', up_to: live.seq });
    await eventually('ack applied', async () => {
      const pull = await call('GET', '/api/messages', { token: bob.token });
      return pull.body.events.length === 0;
    });

    await stack.killListener(victim, 'SIGKILL');
    expect((await first.closed).code).to.equal(1006);
    // Sent while bob has no socket: it waits in his inbox.
    await sendText(call, alice, [bob], 'while you were away');
    await sendText(call, alice, [bob], 'and this too');
    // The killed listener never removed its row; it stops counting once its heartbeat is stale.
    await eventually('bob offline', async () => (await presence(call, alice, [bob.username])).length === 0);

    const second = open(bob.token);
    const events = await second.waitEvents(2);
    expect(events.map((e) => decrypt(bob, e))).to.deep.equal(['while you were away', 'and this too']);
    expect(events[0].seq).to.be.greaterThan(live.seq);
    const survivor = stack.listeners[1 - victim]?.instanceId;
    expect(await holder(db, bob.deviceId)).to.equal(survivor);
    expect(await presence(call, alice, [bob.username])).to.deep.equal([bob.username]);
    // And live again on the survivor.
    await sendText(call, alice, [bob], 'welcome back');
    expect(decrypt(bob, (await second.waitEvents(3))[2])).to.equal('welcome back');
  });

  it('when one IP opens more streams than the limit, then nginx refuses the extra upgrade with 429 JSON', async () => {
    const [bob] = await person(stack.call);
    if (!bob) throw new Error('setup');
    const held = [1, 2, 3].map(() => open(bob.token, '127.0.0.7'));
    await Promise.all(held.map((s) => s.opened));
    const extra = open(bob.token, '127.0.0.7');
    await extra.closed;
    expect(extra.refusal?.status).to.equal(429);
    expect(JSON.parse(extra.refusal?.body ?? '{}')).to.include({ error: 'rate_limited' });
    // Another address is not affected.
    const other = open(bob.token, '127.0.0.8');
    await other.opened;
  });
});
