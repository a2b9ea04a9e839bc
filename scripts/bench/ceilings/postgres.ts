import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { dropDatabase, freshDatabase, withDatabase } from '../../../common/db/admin.ts';
import { statement } from '../../../common/db/index.ts';
import { appendStatement } from '../../../listener/db/inbox.ts';

/** The listener's default, so the ceiling runs the same quota check. */
const INBOX_MAX_EVENTS = 10_000;

import type { PendingEvent } from '../../../common/events.ts';
import { eventJson } from '../payload.ts';
import { nowMs } from '../protocol.ts';

/**
 * PostgreSQL commits/s of the send statement done directly with `pg` on `connections`
 * connections, each writing to its own recipient device (no lock waits), in a scratch database
 * that is dropped afterwards so no relay ever sees these outbox rows.
 */
export async function postgresCeiling(
  databaseUrl: string,
  opts: { connections: number; durationMs: number },
): Promise<number> {
  // Its own name per run: two benches on one machine must not drop each other's scratch database.
  const name = `messenger_bench_raw_${randomUUID().slice(0, 8)}`;
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
    // The listener's own send statement (message, recipient, seq bump, inbox and outbox rows in
    // one round trip), built by the same code and run as the same named prepared statement.
    const event: PendingEvent['event'] & { id?: string; seq?: number } = JSON.parse(eventJson());
    delete event.id;
    delete event.seq;
    let commits = 0;
    const started = nowMs();
    const deadline = started + opts.durationMs;
    await Promise.all(
      clients.map(async (c, i) => {
        const device = devices[i] as string;
        while (nowMs() < deadline) {
          const messageId = randomUUID();
          // One message per execution and per commit, as a lone send: the listener's batches
          // carry several, which is what the closed loop is compared against.
          const { sql, bindings } = appendStatement(
            [
              {
                device_id: device,
                event: { ...event, message_id: messageId },
                request_id: null,
                gate: messageId,
              },
            ],
            30,
            {
              inboxMax: INBOX_MAX_EVENTS,
              messages: [
                {
                  id: messageId,
                  sender_user_id: userId,
                  sender_device_id: senderDevice,
                  group_id: null,
                  client_message_id: null,
                  sent_at: new Date(),
                  recipients: [userId],
                },
              ],
            },
          );
          await c.query({ ...statement(sql), values: bindings });
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
