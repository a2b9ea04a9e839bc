import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import { createDb } from '../../common/db/index.ts';
import { deleteTopology, topology } from '../../common/queue/topology.ts';
import { outboxEvents } from '../helpers/db-state.ts';
import { testConfig } from '../helpers/env.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import type { SendRecord } from './driver.ts';
import { collect, type Received, tally } from './tally.ts';
import type { Boxes, World } from './world.ts';

/** Retries fast enough to fit the run: 200 ms … 2 s, and a 10 s window the sink-503 phase outlasts. */
const faultEnv: Record<string, string> = {
  SENDER_RETRY_BASE_MS: '200',
  SENDER_RETRY_MAX_MS: '2000',
  SENDER_RETRY_WINDOW_MS: '10000',
  SENDER_ALLOW_PRIVATE_ADDRESSES: 'true',
  OUTBOX_SWEEP_MS: '500',
  SENDER_TIMEOUT_MS: '5000',
  // The suite reads the senders' "push delivered" lines (debug) to see that both of them work again.
  LOG_LEVEL: 'debug',
};

/**
 * nginx + 2 listeners + 2 senders on an isolated database and queue prefix (other runs' relays
 * and senders on this machine can neither take this run's outbox rows nor its deliveries).
 */
export async function startFaultStack(
  env: Record<string, string>,
): Promise<{ stack: TestStack; cleanup(): Promise<void> }> {
  const overrides = { ...faultEnv, ...env };
  const stack = await startTestStack({
    listeners: 2,
    senders: 2,
    envOverrides: overrides,
    // The driver is one client IP: the edge limits are not what this suite is about.
    limits: { ratePerSecond: 5_000, burst: 10_000, authPerMinute: 6_000, authBurst: 1_000 },
  });
  return {
    stack,
    async cleanup() {
      await stack.stop();
      const config = testConfig(overrides);
      const conn = await amqp.connect(config.AMQP_URL).catch(() => null);
      if (!conn) return;
      try {
        await deleteTopology(await conn.createChannel(), config);
      } catch {
      } finally {
        await conn.close().catch(() => {});
      }
    },
  };
}

/** Messages still waiting in the outbox and the delivery/retry queues (ready, not in flight). */
async function backlog(env: Record<string, string>): Promise<number> {
  const config = testConfig({ ...faultEnv, ...env });
  const db = createDb(config.DATABASE_URL, 1);
  const conn = await amqp.connect(config.AMQP_URL);
  try {
    const n = await outboxEvents(db);
    const ch = await conn.createChannel();
    const t = topology(config);
    let queued = 0;
    for (const q of [...t.deliveryShards, ...t.tiers.map(t.retryQueue)])
      queued += (await ch.checkQueue(q)).messageCount;
    return n + queued;
  } finally {
    await conn.close().catch(() => {});
    await db.destroy();
  }
}

/**
 * Waits (bounded) until every acknowledged message is at every receiving device (push or pull)
 * and the pipeline is quiet: no backlog and no push for 2 s. Returns what the devices hold.
 */
export async function settle(opts: {
  stack: TestStack;
  world: World;
  boxes: Boxes;
  records: SendRecord[];
  env: Record<string, string>;
  timeoutMs: number;
}): Promise<{ received: Received; ms: number; quiet: boolean }> {
  const started = Date.now();
  const { world } = opts;
  const lastPush = () => Math.max(0, ...[...world.sinks.values()].map((s) => s.requests.at(-1)?.at ?? 0));
  for (;;) {
    const received = await collect(
      opts.stack.call,
      opts.boxes,
      world.devices.values(),
      world.sinks,
      world.accepted,
    );
    const missing = tally(opts.records, received, []).total.lost;
    const quiet = Date.now() - lastPush() > 2_000 && (await backlog(opts.env).catch(() => -1)) === 0;
    if ((missing === 0 && quiet) || Date.now() - started > opts.timeoutMs) {
      return { received, ms: Date.now() - started, quiet };
    }
    await sleep(1_000);
  }
}
