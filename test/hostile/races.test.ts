import { expect } from 'chai';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import type { Call, Reply } from '../helpers/http.ts';
import { useListener } from '../helpers/listener.ts';
import { type Device, envelopesFor, keyOf, person } from '../helpers/people.ts';

const RUNS = Number(process.env.RACE_RUNS ?? 30);

/** Two users with two devices each, a group of both, and one message each side has sent. */
async function world(call: Call) {
  const alice = (await person(call, 2)) as [Device, Device];
  const bob = (await person(call, 2)) as [Device, Device];
  const all = [...alice, ...bob];
  const others = (d: Device) => all.filter((x) => x !== d).map(keyOf);
  const group = await call('POST', '/api/groups', {
    token: alice[0].token,
    body: { name: 'race', members: [bob[0].username] },
  });
  expect(group.status, JSON.stringify(group.body)).to.equal(201);
  const first = await call('POST', '/api/messages', {
    token: alice[0].token,
    body: { to: bob[0].username, envelopes: envelopesFor(alice[0], others(alice[0]), 'first') },
  });
  expect(first.status).to.equal(201);
  return {
    alice,
    bob,
    all,
    others,
    groupId: group.body.group_id as string,
    messageId: first.body.message_id as string,
  };
}

type World = Awaited<ReturnType<typeof world>>;

function at(w: World, i: number): Device {
  const d = w.all[i];
  if (!d) throw new Error(`no device #${i}`);
  return d;
}
type Op = (call: Call, w: World) => Promise<Reply>;

const dev = fc.integer({ min: 0, max: 3 });
const ops: fc.Arbitrary<[string, Op]>[] = [
  dev.map((i) => [
    `login new #${i}`,
    (c, w) =>
      c('POST', '/api/login', {
        body: {
          username: at(w, i).username,
          password: at(w, i).password,
          public_key: Buffer.from(nacl.box.keyPair().publicKey).toString('base64'),
        },
      }),
  ]),
  dev.map((i) => [
    `resume #${i}`,
    (c, w) =>
      c('POST', '/api/login', {
        body: {
          username: at(w, i).username,
          password: at(w, i).password,
          public_key: keyOf(at(w, i)).public_key,
          device_id: at(w, i).deviceId,
        },
      }),
  ]),
  dev.map((i) => [`logout #${i}`, (c, w) => c('POST', '/api/logout', { token: at(w, i).token })]),
  fc
    .tuple(dev, dev)
    .map(([i, j]) => [
      `#${i} deletes device #${j}`,
      (c, w) => c('DELETE', `/api/devices/${at(w, j).deviceId}`, { token: at(w, i).token }),
    ]),
  dev.map((i) => [
    `delete account of #${i}`,
    (c, w) => c('DELETE', '/api/users/me', { token: at(w, i).token, body: { password: at(w, i).password } }),
  ]),
  dev.map((i) => [
    `#${i} renames`,
    (c, w) => c('PATCH', '/api/users/me', { token: at(w, i).token, body: { display_name: `n${i}` } }),
  ]),
  dev.map((i) => [
    `#${i} changes password`,
    (c, w) =>
      c('PATCH', '/api/users/me', {
        token: at(w, i).token,
        body: { password: at(w, i).password, current_password: at(w, i).password },
      }),
  ]),
  fc.tuple(dev, fc.boolean()).map(([i, set]) => [
    `#${i} address ${set}`,
    (c, w) =>
      c('PATCH', '/api/devices/current', {
        token: at(w, i).token,
        body: { user_address: set ? 'http://127.0.0.1:9/push' : null, name: 'd' },
      }),
  ]),
  fc.tuple(dev, fc.boolean(), fc.option(fc.constantFrom('k1', 'k2'))).map(([i, toGroup, cmid]) => [
    `#${i} sends ${toGroup ? 'group' : '1:1'} ${cmid}`,
    (c, w) => {
      const d = at(w, i);
      const target = i < 2 ? w.bob[0].username : w.alice[0].username;
      return c('POST', '/api/messages', {
        token: d.token,
        body: {
          ...(toGroup ? { group_id: w.groupId } : { to: target }),
          ...(cmid && { client_message_id: cmid }),
          envelopes: envelopesFor(d, w.others(d), 'race'),
        },
      });
    },
  ]),
  dev.map((i) => [
    `#${i} edits`,
    (c, w) =>
      c('PUT', `/api/messages/${w.messageId}`, {
        token: at(w, i).token,
        body: { envelopes: envelopesFor(at(w, i), w.others(at(w, i)), 'edited') },
      }),
  ]),
  dev.map((i) => [
    `#${i} deletes the message`,
    (c, w) => c('DELETE', `/api/messages/${w.messageId}`, { token: at(w, i).token }),
  ]),
  dev.map((i) => [
    `#${i} reads`,
    (c, w) =>
      c('POST', `/api/messages/${w.messageId}/receipts`, { token: at(w, i).token, body: { type: 'read' } }),
  ]),
  dev.map((i) => [`#${i} pulls`, (c, w) => c('GET', '/api/messages', { token: at(w, i).token })]),
  dev.map((i) => [
    `#${i} acks`,
    (c, w) => c('POST', '/api/messages/ack', { token: at(w, i).token, body: { up_to: 3 } }),
  ]),
  dev.map((i) => [`#${i} lists devices`, (c, w) => c('GET', '/api/devices', { token: at(w, i).token })]),
  dev.map((i) => [
    `#${i} leaves/removes`,
    (c, w) => c('DELETE', `/api/groups/${w.groupId}/members/${w.bob[0].userId}`, { token: at(w, i).token }),
  ]),
  dev.map((i) => [
    `#${i} adds`,
    (c, w) =>
      c('POST', `/api/groups/${w.groupId}/members`, {
        token: at(w, i).token,
        body: { username: w.bob[0].username },
      }),
  ]),
];

describe('races: concurrent operations on the same accounts', function () {
  this.timeout(120_000);
  const t = useListener();

  it('when a user is added to a group (or a group is created with them) while deleting their account, then no 500', async () => {
    // The account deletion verifies the password first, so the adds start a little later each round
    // to meet its transaction at different points.
    for (let delay = 0; delay < 16; delay += 1) {
      const [owner] = (await person(t.call, 1)) as [Device];
      const [a, b] = [(await person(t.call, 1))[0] as Device, (await person(t.call, 1))[0] as Device];
      const group = await t.call('POST', '/api/groups', {
        token: owner.token,
        body: { name: 'g', members: [] },
      });
      expect(group.status).to.equal(201);
      const later = <T>(f: () => Promise<T>) => new Promise<T>((ok) => setTimeout(() => ok(f()), delay));
      const [delA, delB, add, create] = await Promise.all([
        t.call('DELETE', '/api/users/me', { token: a.token, body: { password: a.password } }),
        t.call('DELETE', '/api/users/me', { token: b.token, body: { password: b.password } }),
        later(() =>
          t.call('POST', `/api/groups/${group.body.group_id}/members`, {
            token: owner.token,
            body: { username: a.username },
          }),
        ),
        later(() =>
          t.call('POST', '/api/groups', { token: owner.token, body: { name: 'h', members: [b.username] } }),
        ),
      ]);
      expect([delA.status, delB.status]).to.deep.equal([204, 204]);
      expect([204, 404], JSON.stringify(add.body)).to.include(add.status);
      expect([201, 404], JSON.stringify(create.body)).to.include(create.status);
    }
  });

  it(`when ${RUNS} random batches of conflicting requests run at once, then none answers 5xx and errors are JSON`, async () => {
    let requests = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(...ops), { minLength: 3, maxLength: 10 }), async (batch) => {
        const w = await world(t.call);
        const replies = await Promise.all(batch.map(([, op]) => op(t.call, w)));
        requests += replies.length;
        replies.forEach((r, k) => {
          const what = `${batch[k]?.[0]} → ${r.status} ${JSON.stringify(r.body)} (batch: ${batch.map(([n]) => n).join(', ')})`;
          expect(r.status, what).to.be.below(500);
          if (r.status >= 400) expect(r.body?.error, what).to.be.a('string');
        });
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    console.log(`      races: ${RUNS} batches, ${requests} concurrent requests, 0 x 5xx`);
  });
});
