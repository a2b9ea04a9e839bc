import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { PresenceMetrics } from '../../common/metrics.ts';
import { type Call, client } from '../helpers/http.ts';
import { startListener, type TestListener } from '../helpers/listener.ts';
import { type Device, person } from '../helpers/people.ts';
import { eventually, FAST, StreamClient } from './helpers.ts';

/** Quiet heartbeats, so every query a listener runs during a transition belongs to it. */
const QUIET = { ...FAST, PRESENCE_HEARTBEAT_MS: '600000', PRESENCE_GRACE_MS: '0' };

async function counter(m: PresenceMetrics, name: keyof PresenceMetrics): Promise<number> {
  const c = m[name] as { get(): Promise<{ values: { value: number }[] }> };
  return (await c.get()).values.reduce((n, v) => n + v.value, 0);
}

/**
 * The cost of one presence transition fanned out to N subscribers of the user on one listener:
 * SQL statements on the subscribers' listener (A) and the announcing one (B), broker messages
 * published and received, frames sent. Printed for 1, 100 and 500; asserted flat in N.
 */
describe('presence fan-out cost', function () {
  this.timeout(300_000);
  let a: TestListener;
  let b: TestListener;
  let call: Call;
  const sockets: StreamClient[] = [];

  before(async () => {
    a = await startListener({ ...QUIET, INSTANCE_ID: 'presence-fanout-a' });
    b = await startListener({ ...QUIET, INSTANCE_ID: 'presence-fanout-b' });
    call = client(a.url);
  });
  after(async () => {
    for (const s of sockets.splice(0)) s.ws.terminate();
    await a?.close();
    await b?.close();
  });

  it('when 1, 100 and 500 sockets on a listener watch a user, then one transition costs the same queries and broker messages', async () => {
    const [bob] = await person(call);
    if (!bob) throw new Error('setup');
    const watchers: Device[] = [];
    for (let i = 0; i < 500; i += 25) {
      watchers.push(
        ...(await Promise.all(Array.from({ length: 25 }, async () => (await person(call))[0] as Device))),
      );
    }
    // One group makes them all contacts of bob (written directly: past GROUP_MEMBERS_MAX on purpose).
    const groupId = randomUUID();
    await a.deps.db('groups').insert({ id: groupId, name: 'fan-out' });
    await a.deps
      .db('group_members')
      .insert([bob, ...watchers].map((d) => ({ group_id: groupId, user_id: d.userId })));

    const rows: Record<string, number | string>[] = [];
    let bobStream: StreamClient | undefined;
    const watched: StreamClient[] = [];
    for (const n of [1, 100, 500]) {
      while (watched.length < n) {
        const s = new StreamClient(a.url, { token: (watchers[watched.length] as Device).token });
        sockets.push(s);
        watched.push(s);
        await s.opened;
        s.send({ type: 'presence.subscribe', users: [bob.username] });
      }
      const frames = () =>
        watched.reduce((k, s) => k + s.frames.filter((f) => f.type === 'presence').length, 0);
      await eventually(
        `${n} initial frames`,
        () => watched.every((s) => s.frames.some((f) => f.type === 'presence')),
        60_000,
      );
      for (const online of [true, false]) {
        let queriesA = 0;
        let queriesB = 0;
        const countA = () => queriesA++;
        const countB = () => queriesB++;
        const before = {
          published: await counter(b.deps.metrics.presence, 'transitionsPublished'),
          received: await counter(a.deps.metrics.presence, 'changesReceived'),
          sent: await counter(a.deps.metrics.presence, 'framesSent'),
          frames: frames(),
        };
        a.deps.db.on('query', countA);
        b.deps.db.on('query', countB);
        if (online) {
          bobStream = new StreamClient(b.url, { token: bob.token });
          sockets.push(bobStream);
        } else {
          await bobStream?.close();
        }
        await eventually(`${n} frames`, () => frames() >= before.frames + n, 60_000);
        a.deps.db.off('query', countA);
        b.deps.db.off('query', countB);
        const row = {
          subscribers: n,
          transition: online ? 'online' : 'offline',
          queries_subscriber_listener: queriesA,
          queries_announcing_listener: queriesB,
          broker_published:
            (await counter(b.deps.metrics.presence, 'transitionsPublished')) - before.published,
          broker_received: (await counter(a.deps.metrics.presence, 'changesReceived')) - before.received,
          frames_sent: (await counter(a.deps.metrics.presence, 'framesSent')) - before.sent,
        };
        rows.push(row);
        expect(row.queries_subscriber_listener, JSON.stringify(row)).to.equal(1);
        expect(row.broker_published, JSON.stringify(row)).to.equal(1);
        expect(row.broker_received, JSON.stringify(row)).to.equal(1);
        expect(row.frames_sent, JSON.stringify(row)).to.equal(n);
      }
    }
    if (process.env.PRESENCE_FANOUT_REPORT) console.table(rows);
  });
});
