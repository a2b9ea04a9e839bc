import { randomBytes, randomUUID } from 'node:crypto';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { expect } from 'chai';
import type { Config } from '../../common/config.ts';
import { createDb, type Db } from '../../common/db/index.ts';
import { createLogger } from '../../common/log.ts';
import { type Broker, connectBroker } from '../../common/queue/broker.ts';
import { parseDeliveries } from '../../common/queue/messages.ts';
import { deleteTopology, topology } from '../../common/queue/topology.ts';
import { relayBatch, startOutboxRelay } from '../../listener/messaging/relay.ts';
import { testConfig } from '../helpers/env.ts';
import { eventually, isolatedDatabase } from '../helpers/sender.ts';

async function drain(ch: Channel, queue: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (;;) {
    const msg = await ch.get(queue, { noAck: true });
    if (!msg) return out;
    out.push(msg.content);
  }
}

async function insertOutbox(db: Db, n: number): Promise<{ device_id: string; seq: number }[]> {
  const device = randomUUID();
  // One outbox row per event, as a statement that appended one event writes it.
  const rows = Array.from({ length: n }, (_, i) => ({
    device_ids: [device],
    seqs: [i + 1],
    event_ids: [randomUUID()],
    request_ids: [`req-${i}`],
  }));
  await db.batchInsert('outbox', rows, 500);
  return rows.map((_, i) => ({ device_id: device, seq: i + 1 }));
}

describe('outbox relay', () => {
  let database: Awaited<ReturnType<typeof isolatedDatabase>>;
  let config: Config;
  let db: Db;
  let brokers: Broker[] = [];
  let conn: ChannelModel;
  let ch: Channel;
  let liveQueue: string;
  before(async () => {
    database = await isolatedDatabase();
    config = testConfig({
      DATABASE_URL: database.url,
      AMQP_PREFIX: `test.${randomBytes(4).toString('hex')}`,
    });
    db = createDb(config.DATABASE_URL, 4);
    conn = await amqp.connect(config.AMQP_URL);
    ch = await conn.createChannel();
  });
  beforeEach(async () => {
    brokers = [];
    const broker = await connectBroker(config, createLogger('silent', 'relay-test'));
    brokers.push(broker);
    await eventually(
      () =>
        broker.ready().then(
          () => true,
          () => false,
        ),
      5_000,
      'broker connected',
    );
    // A stand-in for a stream: wake-ups for every device.
    ({ queue: liveQueue } = await ch.assertQueue('', { exclusive: true }));
    await ch.bindQueue(liveQueue, topology(config).live, '#');
    await ch.purgeQueue(topology(config).deliveries);
  });
  afterEach(async () => {
    await Promise.all(brokers.map((b) => b.close()));
    await ch.deleteQueue(liveQueue);
  });
  after(async () => {
    await deleteTopology(ch, config).catch(() => {});
    await conn.close();
    await db.destroy();
    await database.drop();
  });

  it('when three relays sweep the same outbox at once, then every row is published exactly once, with one live wake-up per device and batch, and the outbox empties', async () => {
    const rows = await insertOutbox(db, 600);
    const more = await Promise.all(
      [1, 2].map(() => connectBroker(config, createLogger('silent', 'relay-test'))),
    );
    brokers.push(...more);
    const pools = [db, createDb(config.DATABASE_URL, 2), createDb(config.DATABASE_URL, 2)];
    const relays = brokers.map((broker, i) =>
      startOutboxRelay({
        db: pools[i] ?? db,
        broker,
        log: createLogger('silent', 'r'),
        batchSize: 50,
        sweepMs: 50,
        sweepAgeMs: 0,
      }),
    );
    await eventually(
      async () => Number((await db('outbox').count({ n: '*' }))[0]?.n) === 0,
      15_000,
      'outbox empty',
    );
    await Promise.all(relays.map((r) => r.stop()));
    await Promise.all(pools.slice(1).map((p) => p.destroy()));

    const deliveries = (await drain(ch, topology(config).deliveries)).flatMap(
      (b) => parseDeliveries(b) ?? [],
    );
    expect(deliveries.every((d) => d !== null && d.attempt === 0)).to.equal(true);
    const keys = deliveries.map((d) => `${d?.device_id}/${d?.seq}`);
    expect(keys).to.have.length(rows.length);
    expect(new Set(keys).size).to.equal(rows.length);
    expect(deliveries[0]?.request_id).to.match(/^req-\d+$/);

    const live = (await drain(ch, liveQueue)).map((b) => JSON.parse(b.toString()));
    expect(Object.keys(live[0] ?? {})).to.deep.equal(['devices']);
    // One device: one wake per batch of 50, carrying the batch's highest seq; the last is among them.
    expect(live.length).to.be.within(1, rows.length / 50);
    expect(live.flatMap((l) => l.devices.map((d: [string, number]) => d[1]))).to.include(rows.length);
    expect(live.every((l) => l.devices.every((d: [string, number]) => d[0] === rows[0]?.device_id))).to.equal(
      true,
    );
  });

  it('when one batch has rows of several devices, then one wake-up reaches each queue bound to any of them, once', async () => {
    const a = await insertOutbox(db, 2);
    const b = await insertOutbox(db, 3);
    const deviceB = b[0]?.device_id ?? '';
    // A stand-in for a listener holding only device B's socket.
    const { queue: onlyB } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(onlyB, topology(config).live, deviceB);
    const broker = brokers[0];
    if (!broker) throw new Error('setup');
    expect(await relayBatch(db, broker, 100)).to.equal(a.length + b.length);
    const [wake, ...more] = await drain(ch, onlyB);
    expect(more).to.deep.equal([]);
    expect(JSON.parse(String(wake)).devices).to.deep.include.members([
      [a[0]?.device_id, 2],
      [deviceB, 3],
    ]);
    expect(await drain(ch, liveQueue)).to.have.length(1);
    await ch.deleteQueue(onlyB);
  });

  it('when the rows just committed belong to a device without a push address, then they get a wake-up but no delivery', async () => {
    const broker = brokers[0];
    if (!broker) throw new Error('setup');
    const relay = startOutboxRelay({
      db,
      broker,
      log: createLogger('silent', 'r'),
      batchSize: 50,
      sweepMs: 60_000,
      sweepAgeMs: 60_000,
    });
    const [pushed, pulled] = [randomUUID(), randomUUID()];
    const entry = (device_id: string, seq: number, address: string | null) => ({
      id: String(seq),
      device_id,
      seq,
      event_id: randomUUID(),
      request_id: null,
      created_at: new Date(),
      body: '{}',
      address,
    });
    relay.publish([
      entry(pushed, 1, 'https://push.example/1'),
      entry(pulled, 1, null),
      entry(pulled, 2, null),
    ]);
    await eventually(async () => (await ch.checkQueue(liveQueue)).messageCount === 1, 5_000, 'wake-up');
    await relay.stop();
    const deliveries = (await drain(ch, topology(config).deliveries)).flatMap(
      (b) => parseDeliveries(b) ?? [],
    );
    expect(deliveries.map((d) => d?.device_id)).to.deep.equal([pushed]);
    const [wake] = (await drain(ch, liveQueue)).map((b) => JSON.parse(b.toString()));
    expect(wake.devices).to.deep.include.members([
      [pushed, 1],
      [pulled, 2],
    ]);
  });

  it('when the broker cannot route the deliveries, then the batch rolls back and the rows stay for the next sweep', async () => {
    const rows = await insertOutbox(db, 5);
    await ch.deleteQueue(topology(config).deliveries);
    const broker = brokers[0];
    if (!broker) throw new Error('setup');
    let failure: unknown;
    try {
      await relayBatch(db, broker, 100);
    } catch (err) {
      failure = err;
    }
    expect(String(failure)).to.match(/unroutable/);
    expect(Number((await db('outbox').count({ n: '*' }))[0]?.n)).to.equal(rows.length);
    await ch.assertQueue(topology(config).deliveries, {
      durable: true,
      arguments: { 'x-queue-type': config.AMQP_QUEUE_TYPE },
    });
    expect(await relayBatch(db, broker, 100)).to.equal(rows.length);
    const bodies = await drain(ch, topology(config).deliveries);
    expect(bodies.flatMap((b) => parseDeliveries(b) ?? [])).to.have.length(rows.length);
  });
});
