import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { dropDatabase, freshDatabase, withDatabase } from '../../../common/db/admin.ts';
import { eventJson } from '../payload.ts';
import { nowMs } from '../protocol.ts';

// The statements of the send transaction (insertMessage + appendEvents), one device per message.
const INSERT_MESSAGE = `INSERT INTO messages (id, sender_user_id, sender_device_id, group_id, client_message_id)
  VALUES ($1, $2, $3, NULL, NULL) RETURNING sent_at`;
const BUMP_SEQ = `UPDATE devices d SET last_seq = d.last_seq + c.n
    FROM unnest($1::uuid[], $2::int[]) AS c(id, n)
   WHERE d.id = c.id
     AND d.id IN (SELECT id FROM devices WHERE id = ANY($3::uuid[]) ORDER BY id FOR UPDATE)
   RETURNING d.id, d.last_seq`;
const INSERT_EVENTS = `WITH ins AS (
    INSERT INTO inbox (device_id, seq, event_id, type, message_id, body, expires_at)
    SELECT e.device_id, e.seq, e.event_id, e.type, e.message_id, e.body, now() + make_interval(days => $1)
      FROM unnest($2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::uuid[], $7::text[])
           AS e(device_id, seq, event_id, type, message_id, body)
    RETURNING device_id, seq, event_id)
  INSERT INTO outbox (device_id, seq, event_id) SELECT device_id, seq, event_id FROM ins ORDER BY device_id, seq`;

/**
 * PostgreSQL commits/s of the send transaction done directly with `pg` on `connections`
 * connections, each writing to its own recipient device (no lock waits), in a scratch database
 * that is dropped afterwards so no relay ever sees these outbox rows.
 */
export async function postgresCeiling(
  databaseUrl: string,
  opts: { connections: number; durationMs: number },
): Promise<number> {
  const name = 'messenger_bench_raw';
  const url = withDatabase(databaseUrl, name);
  await freshDatabase(url);
  try {
    const clients = await Promise.all(
      Array.from({ length: opts.connections }, async () => {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        return c;
      }),
    );
    const userId = randomUUID();
    const senderDevice = randomUUID();
    const devices = clients.map(() => randomUUID());
    const c0 = clients[0];
    if (!c0) throw new Error('no connections');
    await c0.query(`INSERT INTO users (id, username, password_hash) VALUES ($1, 'bench_raw', 'x')`, [userId]);
    await c0.query(`INSERT INTO devices (id, user_id, public_key) SELECT unnest($1::uuid[]), $2, 'k'`, [
      [senderDevice, ...devices],
      userId,
    ]);
    const body = eventJson();
    let commits = 0;
    const started = nowMs();
    const deadline = started + opts.durationMs;
    await Promise.all(
      clients.map(async (c, i) => {
        const device = devices[i] as string;
        while (nowMs() < deadline) {
          const messageId = randomUUID();
          await c.query('BEGIN');
          await c.query(INSERT_MESSAGE, [messageId, userId, senderDevice]);
          const { rows } = await c.query<{ last_seq: string }>(BUMP_SEQ, [[device], [1], [device]]);
          const seq = Number(rows[0]?.last_seq);
          await c.query(INSERT_EVENTS, [
            30,
            [device],
            [seq],
            [randomUUID()],
            ['message'],
            [messageId],
            [body],
          ]);
          await c.query('COMMIT');
          commits++;
        }
      }),
    );
    const elapsed = nowMs() - started;
    await Promise.all(clients.map((c) => c.end()));
    return (commits * 1000) / elapsed;
  } finally {
    await dropDatabase(url);
  }
}
