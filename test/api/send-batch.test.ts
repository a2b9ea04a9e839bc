import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { newId } from '../../common/ids.ts';
import { createLogger } from '../../common/log.ts';
import { sendBatcher } from '../../listener/messaging/send-batcher.ts';
import { client } from '../helpers/http.ts';
import { startListener, type TestListener, useListener } from '../helpers/listener.ts';
import { type Device, envelopesFor, keyOf, login, person } from '../helpers/people.ts';
import { StreamClient } from '../stream/helpers.ts';

/** Direct sends are stored by group commit: these check what each request gets and what is stored. */
describe('sends stored in batches', () => {
  const t = useListener();

  const send = (from: Device, to: Device, targets: Device[], text: string, cmid?: string) =>
    t.call('POST', '/api/messages', {
      token: from.token,
      body: {
        to: to.username,
        envelopes: envelopesFor(from, targets.map(keyOf), text),
        ...(cmid && { client_message_id: cmid }),
      },
    });

  const inbox = async (d: Device) =>
    (await t.listener.deps.db('inbox').where({ device_id: d.deviceId }).orderBy('seq')) as {
      seq: string;
      message_id: string;
      body: string;
    }[];

  it('when 60 senders send to one device at once, then every 201 is stored once and the seqs are 1..60 in commit order', async () => {
    const [bob] = await person(t.call);
    if (!bob) throw new Error('setup');
    const senders = await Promise.all(Array.from({ length: 60 }, () => person(t.call)));
    const answers = await Promise.all(senders.map(([a], i) => send(a as Device, bob, [bob], `m${i}`)));
    expect(answers.map((r) => r.status)).to.deep.equal(answers.map(() => 201));
    const rows = await inbox(bob);
    expect(rows.map((r) => Number(r.seq))).to.deep.equal(rows.map((_, i) => i + 1));
    expect(new Set(rows.map((r) => r.message_id))).to.deep.equal(
      new Set(answers.map((r) => r.body.message_id)),
    );
    // The body's own seq is the row's (spliced in by the statement).
    for (const r of rows) expect(JSON.parse(r.body).seq).to.equal(Number(r.seq));
  });

  it('when one sender fires 30 sends without waiting, then the recipient device gets them with increasing seqs and nothing twice', async () => {
    const [alice] = await person(t.call);
    const [bob] = await person(t.call);
    if (!alice || !bob) throw new Error('setup');
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => send(alice, bob, [bob], `n${i}`)));
    expect(answers.every((r) => r.status === 201)).to.equal(true);
    const rows = await inbox(bob);
    expect(rows).to.have.length(30);
    expect(new Set(rows.map((r) => r.message_id)).size).to.equal(30);
  });

  it('when an account is deleted between the checks and the statement, then its sends are 404 or 401 and a batch-mate is stored', async () => {
    const [alice] = await person(t.call);
    const [bob] = await person(t.call);
    const [carol] = await person(t.call);
    if (!alice || !bob || !carol) throw new Error('setup');
    // Warm this listener's caches, then delete the accounts behind its back (no invalidation
    // broadcast): its checks pass, and the statement meets the foreign keys.
    expect((await send(alice, bob, [bob], 'hi')).status).to.equal(201);
    expect((await send(carol, alice, [alice], 'hi')).status).to.equal(201);
    const { db } = t.listener.deps;
    await db('users').whereIn('id', [bob.userId, carol.userId]).delete();
    const [toGone, fromGone, fine] = await Promise.all([
      send(alice, bob, [bob], 'to a deleted account'),
      send(carol, alice, [alice], 'from a deleted account'),
      send(alice, alice, [], 'to myself'),
    ]);
    expect([toGone.status, toGone.body.error]).to.deep.equal([404, 'not_found']);
    expect([fromGone.status, fromGone.body.error]).to.deep.equal([401, 'unauthorized']);
    expect(fine.status).to.equal(201);
    // The two warm-up messages and `fine`; nothing of the refused ones.
    const stored = await db('messages').whereIn('sender_device_id', [alice.deviceId, carol.deviceId]);
    expect(stored).to.have.length(3);
  });

  it('when batch-mates mismatch devices, reuse a client id or race on a new one, then each gets its own answer and only the valid ones are stored', async () => {
    const [alice] = await person(t.call);
    const bobs = await person(t.call, 2);
    const [bob1, bob2] = bobs;
    if (!alice || !bob1 || !bob2) throw new Error('setup');
    const first = await send(alice, bob1, bobs, 'first', 'c-old');
    expect(first.status).to.equal(201);
    const racing = `c-${randomUUID()}`;
    const answers = await Promise.all([
      send(alice, bob1, bobs, 'ok 1'),
      send(alice, bob1, [bob1], 'missing bob2'), // 409
      send(alice, bob1, bobs, 'replay', 'c-old'), // 200, the first message
      send(alice, bob1, bobs, 'race a', racing),
      send(alice, bob1, bobs, 'race b', racing),
      send(alice, bob1, bobs, 'ok 2'),
    ]);
    const [ok1, mismatch, replay, raceA, raceB, ok2] = answers;
    expect(ok1?.status).to.equal(201);
    expect(ok2?.status).to.equal(201);
    expect(mismatch?.status).to.equal(409);
    expect(mismatch?.body.error).to.equal('device_mismatch');
    expect(replay?.status).to.equal(200);
    expect(replay?.body.message_id).to.equal(first.body.message_id);
    // Exactly one of the racing pair stored it; the other answers with the same message.
    expect([raceA?.status, raceB?.status].sort()).to.deep.equal([200, 201]);
    expect(raceA?.body.message_id).to.equal(raceB?.body.message_id);
    const stored = new Set([first, ok1, ok2, raceA].map((r) => r?.body.message_id as string));
    for (const b of bobs) expect(new Set((await inbox(b)).map((r) => r.message_id))).to.deep.equal(stored);
  });

  it('when a client id is reused after its 24 h window but before the cleanup freed it, then the send is stored anew (it was a 500)', async () => {
    const [alice] = await person(t.call);
    const [bob] = await person(t.call);
    if (!alice || !bob) throw new Error('setup');
    const old = await send(alice, bob, [bob], 'yesterday', 'c-reused');
    expect(old.status).to.equal(201);
    await t.listener.deps
      .db('messages')
      .where({ id: old.body.message_id })
      .update({ sent_at: t.listener.deps.db.raw(`now() - interval '25 hours'`) });
    const again = await send(alice, bob, [bob], 'today', 'c-reused');
    expect(again.status).to.equal(201);
    expect(again.body.message_id).to.not.equal(old.body.message_id);
    const replay = await send(alice, bob, [bob], 'today, retried', 'c-reused');
    expect(replay.status).to.equal(200);
    expect(replay.body.message_id).to.equal(again.body.message_id);
  });

  it('when one job of a batch makes the statement fail, then only that job fails and its batch-mates are stored', async () => {
    const [alice] = await person(t.call);
    const [bob] = await person(t.call);
    if (!alice || !bob) throw new Error('setup');
    const { db, config } = t.listener.deps;
    const committed: string[] = [];
    const batcher = sendBatcher({
      db,
      ttlDays: config.INBOX_TTL_DAYS,
      inboxMax: 0,
      max: 10,
      lingerMs: 0,
      log: createLogger('silent', 'test'),
      committed: (rows) => committed.push(...rows.map((r) => r.event_id)),
    });
    const job = (deviceId: string) => {
      const id = newId();
      const event = {
        type: 'message' as const,
        message_id: id,
        group_id: null,
        sent_at: new Date().toISOString(),
        from: { user_id: alice.userId, username: alice.username, device_id: alice.deviceId, public_key: 'k' },
        nonce: 'n',
        ciphertext: 'c',
        file_ids: [],
      };
      return {
        message: {
          id,
          sender_user_id: alice.userId,
          sender_device_id: alice.deviceId,
          group_id: null,
          client_message_id: null,
          sent_at: new Date(),
          recipients: [bob.userId],
        },
        events: [{ device_id: deviceId, event, request_id: null, gate: id }],
      };
    };
    // Not a uuid: PostgreSQL rejects the whole statement it is in.
    const results = await Promise.allSettled(
      [job(bob.deviceId), job('not-a-uuid'), job(bob.deviceId)].map(batcher),
    );
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect(await inbox(bob)).to.have.length(2);
    expect(committed).to.have.length(2);
  });
});

/** Two listeners on one database, each with its own cache, as behind nginx. */
describe('cached sessions and devices across listeners', () => {
  let a: TestListener;
  let b: TestListener;
  before(async () => {
    [a, b] = await Promise.all([startListener(), startListener()]);
    // Both subscribed to the invalidation broadcast (the stream's broker connection).
    for (const l of [a, b]) await until(() => l.deps.cache.serving);
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  async function until(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) throw new Error('condition not reached');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('when a device logs out on one listener, then its token is refused by the other at once', async () => {
    const callA = client(a.url);
    const callB = client(b.url);
    const [alice] = await person(callA);
    if (!alice) throw new Error('setup');
    // B has the session cached now.
    expect((await callB('GET', '/api/users/me', { token: alice.token })).status).to.equal(200);
    expect((await callB('GET', '/api/users/me', { token: alice.token })).status).to.equal(200);
    expect((await callA('POST', '/api/logout', { token: alice.token })).status).to.equal(204);
    expect((await callB('GET', '/api/users/me', { token: alice.token })).status).to.equal(401);
  });

  it('when a recipient adds a device on one listener, then a send through the other must cover it at once', async () => {
    const callA = client(a.url);
    const callB = client(b.url);
    const [alice] = await person(callA);
    const [bob1] = await person(callA);
    if (!alice || !bob1) throw new Error('setup');
    const body = (targets: Device[]) => ({
      to: bob1.username,
      envelopes: envelopesFor(alice, targets.map(keyOf), 'hi'),
    });
    // B caches bob's one-device directory.
    expect(
      (await callB('POST', '/api/messages', { token: alice.token, body: body([bob1]) })).status,
    ).to.equal(201);
    const bob2 = await login(callA, bob1);
    const res = await callB('POST', '/api/messages', { token: alice.token, body: body([bob1]) });
    expect(res.status).to.equal(409);
    expect(res.body.missing_devices.map((d: { device_id: string }) => d.device_id)).to.deep.equal([
      bob2.deviceId,
    ]);
  });

  it('when a device logs out on one listener, then its open stream on the other is closed with 4401 at once, not at the next heartbeat', async () => {
    const callA = client(a.url);
    const [alice] = await person(callA);
    if (!alice) throw new Error('setup');
    const stream = new StreamClient(b.url, { token: alice.token });
    await stream.opened;
    // The presence heartbeat (which also ends revoked streams) is PRESENCE_HEARTBEAT_MS, 10 s here.
    expect(b.deps.config.PRESENCE_HEARTBEAT_MS).to.be.at.least(10_000);
    const started = Date.now();
    expect((await callA('POST', '/api/logout', { token: alice.token })).status).to.equal(204);
    const closed = await Promise.race([
      stream.closed,
      new Promise<null>((r) => setTimeout(() => r(null), 5_000)),
    ]);
    expect(closed?.code, `closed after ${Date.now() - started} ms`).to.equal(4401);
  });

  it('when a password changes on one listener, then the other sessions are refused by the other listener at once', async () => {
    const callA = client(a.url);
    const callB = client(b.url);
    const [phone, laptop] = await person(callA, 2);
    if (!phone || !laptop) throw new Error('setup');
    expect((await callB('GET', '/api/users/me', { token: laptop.token })).status).to.equal(200);
    const changed = await callA('PATCH', '/api/users/me', {
      token: phone.token,
      body: { password: 'another good password', current_password: phone.password },
    });
    expect(changed.status).to.equal(200);
    expect((await callB('GET', '/api/users/me', { token: laptop.token })).status).to.equal(401);
    expect((await callB('GET', '/api/users/me', { token: phone.token })).status).to.equal(200);
  });
});
