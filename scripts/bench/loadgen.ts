/**
 * Load-generator child process: drives prepared requests over one keep-alive undici Pool, in a
 * closed loop (fixed concurrency) or an open loop (fixed arrival rate), and reports accepted
 * message ids with their start times to the parent. Runs apart from the bench so generating load
 * does not share an event loop with the sinks that time the arrivals.
 */
import { Pool } from 'undici';
import { type Accepted, type ChildReport, nowMs, type StartCommand } from './protocol.ts';
import { percentiles } from './stats.ts';

const MESSAGE_ID = /"message_id":"([^"]+)"/;

function send(report: ChildReport): Promise<void> {
  return new Promise((resolve, reject) =>
    process.send?.(report, (err: Error | null) => (err ? reject(err) : resolve())),
  );
}

async function run({ target, shape }: StartCommand): Promise<void> {
  const url = new URL(target.origin);
  const pool = new Pool(target.origin, {
    connections: target.connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connectTimeout: 5_000,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
    ...(url.protocol === 'https:' && { connect: { rejectUnauthorized: false } }),
  });
  const requests = target.requests;
  let ok = 0;
  let errors = 0;
  let skipped = 0;
  let inFlight = 0;
  let pending: Accepted[] = [];
  const errorKinds: Record<string, number> = {};
  const latencies: number[] = [];
  const fail = (kind: string) => {
    errors++;
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
  };

  /** One request; `startedAt` is the scheduled start (open loop) so generator stalls count too. */
  async function one(i: number, startedAt: number): Promise<void> {
    const r = requests[i % requests.length];
    if (!r) return;
    inFlight++;
    try {
      const res = await pool.request({
        method: r.method,
        path: r.path,
        headers: r.headers,
        body: r.body ?? null,
      });
      const text = await res.body.text();
      if (res.statusCode >= 200 && res.statusCode < 300) {
        ok++;
        latencies.push(nowMs() - startedAt);
        if (target.recordMessageIds) {
          const id = MESSAGE_ID.exec(text)?.[1];
          if (id) pending.push([id, startedAt]);
        }
      } else fail(String(res.statusCode));
    } catch (err) {
      fail((err as { code?: string }).code ?? 'error');
    } finally {
      inFlight--;
    }
  }

  const progress = setInterval(() => {
    const accepted = pending;
    pending = [];
    void send({ type: 'progress', ok, errors, inFlight, accepted });
  }, 250);

  const startedAt = nowMs();
  const deadline = startedAt + shape.durationMs;
  if (shape.kind === 'closed') {
    let next = 0;
    const worker = async () => {
      while (nowMs() < deadline) await one(next++, nowMs());
    };
    await Promise.all(Array.from({ length: shape.concurrency }, worker));
  } else {
    const interval = 1000 / shape.ratePerSec;
    const running = new Set<Promise<void>>();
    let issued = 0;
    // Exactly rate × duration arrivals, each at its scheduled time (or as soon after as the loop
    // wakes up: a late loop starts every arrival that is due, it never drops them).
    const total = Math.floor((shape.durationMs / 1000) * shape.ratePerSec);
    while (issued < total) {
      const now = nowMs();
      while (issued < total && startedAt + issued * interval <= now) {
        const at = startedAt + issued * interval;
        if (inFlight >= shape.maxInFlight) skipped++;
        else {
          const p = one(issued, at);
          running.add(p);
          void p.finally(() => running.delete(p));
        }
        issued++;
      }
      // Sleep until the next arrival is due, never spin: a timer fires at the earliest 1 ms later,
      // so at rates above 1,000/s each wake-up starts the arrivals that fell due meanwhile (their
      // latency still counts from their scheduled time). Spinning on setImmediate here kept a core
      // busy for the generator alone and took it from the system under test.
      const wait = startedAt + issued * interval - nowMs();
      await new Promise((resolve) => setTimeout(resolve, Math.min(Math.max(wait, 1), 20)));
    }
    await Promise.all(running);
  }
  const endedAt = nowMs();
  clearInterval(progress);
  await pool.close();
  await send({
    type: 'done',
    ok,
    errors,
    skipped,
    errorKinds,
    startedAt,
    endedAt,
    latency: percentiles(latencies),
    accepted: pending,
  });
}

process.once('message', (cmd: StartCommand) => {
  run(cmd).then(
    () => process.disconnect(),
    (err: unknown) => {
      console.error('load generator failed:', err);
      process.exit(1);
    },
  );
});
