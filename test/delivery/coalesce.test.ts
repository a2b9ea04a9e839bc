import { setImmediate as tick } from 'node:timers/promises';
import { expect } from 'chai';
import { coalesce } from '../../common/db/deliveries.ts';

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
