import { expect } from 'chai';
import {
  type Delivery,
  deliveryPublications,
  invalidationPublication,
  liveSignalPublication,
  parkingPublication,
  parseDeliveries,
  parseInvalidation,
  parseLiveSignal,
  parseParkedDelivery,
  parsePresenceChange,
  presencePublication,
  retryPublication,
} from '../../common/queue/messages.ts';
import { topology } from '../../common/queue/topology.ts';
import { testConfig } from '../helpers/env.ts';

const t = topology(testConfig({ SENDER_RETRY_BASE_MS: '1000', SENDER_RETRY_MAX_MS: '16000' }));
const d: Delivery = {
  device_id: '0b6f4c1e-2b1a-4c55-9a8e-3f3e0c1d2e4f',
  seq: 7,
  event_id: 'a1a2a3a4-0000-4000-8000-000000000001',
  request_id: null,
  created_at: '2026-01-01T00:00:00.000Z',
  attempt: 0,
};

describe('wire formats (common/queue/messages.ts)', () => {
  it('when deliveries are published, then one message carries them and its message id names the first outbox row', () => {
    const e = { ...d, seq: 8, event_id: 'a1a2a3a4-0000-4000-8000-000000000002' };
    const [p, ...more] = deliveryPublications(t, [
      { delivery: d, outboxId: '42' },
      { delivery: e, outboxId: '43' },
    ]);
    expect(more).to.have.length(0);
    expect(p).to.include({ exchange: '', routingKey: t.deliveries });
    expect(p?.options).to.include({ persistent: true, mandatory: true, messageId: `${d.event_id}:42` });
    expect(parseDeliveries(p?.content ?? Buffer.alloc(0))).to.deep.equal([d, e]);
  });

  it("when a batch is large, then it is split by count and by bytes, each delivery in its device's shard", () => {
    const sharded = topology(testConfig({ AMQP_DELIVERY_SHARDS: '3' }));
    const rows = Array.from({ length: 200 }, (_, n) => ({
      delivery: { ...d, device_id: `0b6f4c1e-2b1a-4c55-9a8e-${String(n).padStart(12, '0')}`, seq: n },
      outboxId: String(n),
    }));
    const ps = deliveryPublications(sharded, rows);
    const got = ps.flatMap((p) => {
      const ds = parseDeliveries(p.content) ?? [];
      expect(ds.length).to.be.within(1, 64);
      for (const x of ds) expect(sharded.deliveryQueue(x.device_id)).to.equal(p.routingKey);
      return ds;
    });
    expect(got.map((x) => x.seq).sort((a, b) => a - b)).to.deep.equal(rows.map((r) => r.delivery.seq));
    const big = { ...d, body: 'x'.repeat(100_000) };
    const bigs = deliveryPublications(
      t,
      [0, 1, 2].map((n) => ({ delivery: { ...big, seq: n }, outboxId: String(n) })),
    );
    expect(bigs.map((p) => parseDeliveries(p.content)?.length)).to.deep.equal([2, 1]);
  });

  it('when a delivery is put back to wait, then it goes to the tier at or below the delay and carries not_before', () => {
    const notBefore = Date.now() + 5_000;
    const p = retryPublication(t, d, notBefore);
    expect(p.routingKey).to.equal(t.retryQueue(4_000));
    expect(parseDeliveries(p.content)).to.deep.equal([{ ...d, not_before: notBefore }]);
  });

  it('when a delivery is parked, then the body says why and when', () => {
    const p = parkingPublication(t, d, { kind: 'dead', reason: 'blocked_address' });
    expect(p.routingKey).to.equal(t.parking);
    const parked = parseParkedDelivery(p.content);
    expect(parked).to.deep.include({ ...d, outcome: { kind: 'dead', reason: 'blocked_address' } });
    expect(Date.parse(parked?.parked_at ?? '')).to.be.a('number').and.not.NaN;
  });

  it('when devices are woken, then one message names them all: the first as routing key, all in BCC', () => {
    const wakes = new Map([
      ['dev-a', 3],
      ['dev-b', 9],
    ]);
    const p = liveSignalPublication(t, wakes);
    expect(p).to.include({ exchange: t.live, routingKey: 'dev-a' });
    expect(p.options).to.deep.include({ persistent: false, BCC: ['dev-a', 'dev-b'] });
    expect(JSON.parse(p.content.toString())).to.deep.equal({
      devices: [
        ['dev-a', 3],
        ['dev-b', 9],
      ],
    });
    expect(parseLiveSignal(p.content)).to.deep.equal({
      devices: [
        ['dev-a', 3],
        ['dev-b', 9],
      ],
    });
  });

  it('when a presence change or an invalidation is published, then it parses back from its exchange', () => {
    const change = { user_id: 'u1', username: 'alice', online: true, since: '2026-01-01T00:00:00.000Z' };
    const p = presencePublication(t, change);
    expect(p).to.include({ exchange: t.presence, routingKey: 'alice' });
    expect(parsePresenceChange(p.content)).to.deep.equal(change);
    const i = invalidationPublication(t, 'u1');
    expect(i).to.include({ exchange: t.invalidations, routingKey: '' });
    expect(JSON.parse(i.content.toString())).to.deep.equal({ user_id: 'u1' });
    expect(parseInvalidation(i.content)).to.deep.equal({ user_id: 'u1' });
  });

  it('when a body is not JSON or not of its shape, then every parser says null', () => {
    for (const bad of [
      Buffer.from('not json'),
      Buffer.from('{"devices": 3}'),
      Buffer.from('[]'),
      Buffer.from('{"deliveries": []}'),
    ]) {
      expect(parseDeliveries(bad)).to.equal(null);
      expect(parseParkedDelivery(bad)).to.equal(null);
      expect(parseLiveSignal(bad)).to.equal(null);
      expect(parsePresenceChange(bad)).to.equal(null);
      expect(parseInvalidation(bad)).to.equal(null);
    }
  });
});
