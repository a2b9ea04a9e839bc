import { expect } from 'chai';
import { runLoad } from '../../scripts/bench/load.ts';
import { eventJson } from '../../scripts/bench/payload.ts';
import { type Sinks, startSinks } from '../../scripts/bench/sink.ts';
import { percentiles } from '../../scripts/bench/stats.ts';

// The bench's own plumbing, not speed: what the load generator counts as answered must be what
// the sinks saw, and the statistics must be right. (A whole bench run is too slow for npm test.)
describe('bench plumbing', () => {
  let sinks: Sinks;
  before(async () => {
    sinks = await startSinks(1, 1);
  });
  after(async () => {
    await sinks.close();
  });

  it('when the load generator posts to a sink for a moment, then every answered request arrived and nothing else', async () => {
    const arrivals = sinks.reset();
    const r = await runLoad(
      {
        origin: sinks.origins[0] as string,
        requests: [
          {
            method: 'POST',
            path: '/push/x',
            headers: { 'content-type': 'application/json' },
            body: eventJson(),
          },
        ],
        connections: 4,
        recordMessageIds: false,
      },
      { kind: 'closed', concurrency: 4, durationMs: 300 },
    );
    expect(r.errors).to.equal(0);
    expect(r.ok).to.be.greaterThan(0);
    expect(arrivals.posts).to.equal(r.ok);
  });

  it('when the open loop runs at a fixed rate, then it starts exactly rate × duration requests, all answered', async () => {
    const arrivals = sinks.reset();
    const r = await runLoad(
      {
        origin: sinks.origins[0] as string,
        requests: [
          { method: 'POST', path: '/push/y', headers: { 'content-type': 'application/json' }, body: '{}' },
        ],
        connections: 4,
        recordMessageIds: false,
      },
      { kind: 'open', ratePerSec: 100, durationMs: 500, maxInFlight: 64 },
    );
    expect(r.ok + r.skipped).to.equal(50);
    expect(arrivals.posts).to.equal(r.ok);
  });

  it('when percentiles are taken, then they are nearest-rank over the sorted sample', () => {
    const p = percentiles(Array.from({ length: 100 }, (_, i) => 100 - i));
    expect(p).to.deep.equal({ p50: 50, p95: 95, p99: 99, max: 100 });
    expect(percentiles([7])).to.deep.equal({ p50: 7, p95: 7, p99: 7, max: 7 });
    expect(Number.isNaN(percentiles([]).p50)).to.equal(true);
  });
});
