import { expect } from 'chai';
import { originGate } from '../../sender/origin-gate.ts';

describe('the sender’s per-origin gate', () => {
  it('when several quick origins are at their cap at once, then each may have its own waiting deliveries, and one more than that is deferred', async () => {
    const gate = originGate(1, { maxWaiting: 2, waitMs: 1_000, slowMs: 1_000 });
    expect(await gate.acquire('a')).to.equal(true);
    expect(await gate.acquire('b')).to.equal(true);
    const waiting = ['a', 'a', 'b', 'b'].map((o) => gate.acquire(o));
    expect(await gate.acquire('a'), 'a third waiter for a').to.equal(false);
    for (const o of ['a', 'a', 'a', 'b', 'b', 'b']) gate.release(o);
    expect(await Promise.all(waiting)).to.deep.equal([true, true, true, true]);
  });

  it('when an origin’s oldest push is older than the slow bound, then a delivery for it is deferred at once', async () => {
    const gate = originGate(1, { maxWaiting: 2, waitMs: 1_000, slowMs: 20 });
    expect(await gate.acquire('slow')).to.equal(true);
    await new Promise((r) => setTimeout(r, 30));
    expect(await gate.acquire('slow')).to.equal(false);
    gate.release('slow');
  });
});
