import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { dropDatabase, freshDatabase, withDatabase } from '../../common/db/admin.ts';
import { createDb } from '../../common/db/index.ts';
import { migrationSource } from '../../common/db/migration-source.ts';
import { testConfig } from '../helpers/env.ts';

describe('migration 007: one outbox row per statement', () => {
  it('when rows of one event wait at upgrade, then each becomes a row listing it, and going back restores them', async () => {
    const base = testConfig().DATABASE_URL;
    const url = withDatabase(base, `${new URL(base).pathname.slice(1)}_${randomBytes(4).toString('hex')}`);
    await freshDatabase(url);
    const db = createDb(url, 1);
    try {
      await db.migrate.down({ migrationSource });
      const device = randomUUID();
      const events = [randomUUID(), randomUUID()];
      await db('outbox').insert(
        events.map((event_id, i) => ({ device_id: device, seq: i + 1, event_id, request_id: `r${i}` })),
      );

      await db.migrate.up({ migrationSource });
      const rows = await db('outbox').orderBy('id');
      expect(rows.map((r) => [r.device_ids, r.seqs.map(Number), r.event_ids, r.request_ids])).to.deep.equal([
        [[device], [1], [events[0]], ['r0']],
        [[device], [2], [events[1]], ['r1']],
      ]);

      // A row of a statement that appended two events goes back as two rows.
      await db('outbox').del();
      await db('outbox').insert({
        device_ids: [device, device],
        seqs: [3, 4],
        event_ids: events,
        request_ids: ['r2', null],
      });
      await db.migrate.down({ migrationSource });
      const back = await db('outbox').orderBy('id');
      expect(back.map((r) => [r.device_id, Number(r.seq), r.event_id, r.request_id])).to.deep.equal([
        [device, 3, events[0], 'r2'],
        [device, 4, events[1], null],
      ]);
    } finally {
      await db.destroy();
      await dropDatabase(url);
    }
  });
});
