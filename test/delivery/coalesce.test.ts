import { setImmediate as tick } from 'node:timers/promises';
import { expect } from 'chai';
import { coalesce } from '../../common/db/deliveries.ts';
import { groupCommit } from '../../common/group-commit.ts';

describe('the sender’s group commit of reads and outcome writes', () => {
  it('when calls arrive while a run is going, then they wait and go together into the next run, each with its own answer', async () => {
    const runs: number[][] = [];
    let release: () => void = () => {};
    const call = coalesce(async (keys: number[]) => {
      runs.push(keys);
      if (runs.length === 1) await new Promise<void>((r) => (release = r));
      return keys.map((k) => k * 10);
    });
    const first = call(1);
    await tick();
    const later = [call(2), call(3), call(4)];
    await tick();
    expect(runs).to.deep.equal([[1]]);
    release();
    expect(await Promise.all([first, ...later])).to.deep.equal([10, 20, 30, 40]);
    expect(runs).to.deep.equal([[1], [2, 3, 4]]);
  });

  it('when a run fails, then every call in it fails and the next calls run again', async () => {
    let fail = true;
    const call = coalesce(async (keys: string[]) => {
      if (fail) throw new Error('down');
      return keys;
    });
    const failed = await Promise.allSettled([call('a'), call('b')]);
    expect(failed.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
    fail = false;
    expect(await call('c')).to.equal('c');
  });

  it('when the writes may linger, then calls a few ms apart share one run', async () => {
    const runs: number[][] = [];
    const call = coalesce(
      async (keys: number[]) => {
        runs.push(keys);
        return keys;
      },
      { lingerMs: 30 },
    );
    const first = call(1);
    await new Promise((r) => setTimeout(r, 5));
    await Promise.all([first, call(2)]);
    expect(runs).to.deep.equal([[1, 2]]);
  });
});

describe('group commit that lingers only while busy', () => {
  const LINGER_MS = 200;
  /** A group commit whose runs record their inputs and when they started. */
  function recorder() {
    const runs: { inputs: number[]; at: number }[] = [];
    const call = groupCommit<number, number>(
      async (batch) => {
        runs.push({ inputs: batch.map((w) => w.input), at: performance.now() });
        for (const w of batch) w.resolve(w.input);
      },
      { lingerMs: LINGER_MS, busyOnly: true },
    );
    return { runs, call };
  }

  it('when a call comes after a quiet spell, then it runs at once', async () => {
    const { runs, call } = recorder();
    const started = performance.now();
    expect(await call(1)).to.equal(1);
    expect(runs).to.have.length(1);
    expect((runs[0]?.at ?? Number.POSITIVE_INFINITY) - started).to.be.below(LINGER_MS / 2);
  });

  it('when calls keep coming, then a free slot waits for company and one run takes them all', async () => {
    const { runs, call } = recorder();
    await call(1);
    await tick(); // the run has ended: the slot is free
    // Right after another call: this one lingers, and those made meanwhile join it.
    const first = call(2);
    await new Promise((resolve) => setTimeout(resolve, LINGER_MS / 4));
    const rest = [call(3), call(4)];
    expect(await Promise.all([first, ...rest])).to.deep.equal([2, 3, 4]);
    expect(runs.map((r) => r.inputs)).to.deep.equal([[1], [2, 3, 4]]);
    // After a quiet spell longer than the linger, a call runs at once again.
    await new Promise((resolve) => setTimeout(resolve, LINGER_MS * 1.5));
    const before = performance.now();
    await call(5);
    expect((runs[2]?.at ?? Number.POSITIVE_INFINITY) - before).to.be.below(LINGER_MS / 2);
  });
});
