import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { listAttempts } from '../../common/db/deliveries.ts';
import type { Device } from '../helpers/people.ts';
import { type DeliveryStack, eventually, startDeliveryStack } from '../helpers/sender.ts';
import { type Sink, type SinkRequest, startSink } from '../helpers/sink.ts';
import { pair, send } from './people.ts';

const run = promisify(execFile);

/** Closes, from the broker side, every AMQP connection whose name is `name` (others' stay up). */
async function forceCloseConnections(name: string): Promise<number> {
  const { stdout } = await run('rabbitmqctl', [
    'list_connections',
    'pid',
    'client_properties',
    '--formatter',
    'json',
    '-q',
  ]);
  const rows = JSON.parse(stdout) as { pid: string; client_properties: [string, string, unknown][] }[];
  const pids = rows
    .filter((r) => r.client_properties.some(([k, , v]) => k === 'connection_name' && v === name))
    // The CLI prints a remote pid `#PID<node.id.serial>`; inside the broker it is `<0.id.serial>`.
    .map((r) => r.pid.replace(/^#PID<\d+\./, '<0.'));
  if (!pids.length) return 0;
  const list = pids.map((p) => `"${p}"`).join(',');
  await run('rabbitmqctl', [
    'eval',
    `[rabbit_networking:close_connection(list_to_pid(P), "test: forced close") || P <- [${list}]].`,
  ]);
  return pids.length;
}

async function sendMany(stack: DeliveryStack, from: Device, to: Device, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(await send(stack.call, from, to, `message ${i}`));
  return ids;
}

/** Every message arrived, and every duplicate is the same event under the same webhook-id. */
function expectEachOnce(reqs: SinkRequest[], messageIds: string[]) {
  const byId = new Map<string, string>();
  for (const r of reqs) {
    const event = r.json();
    expect(r.headers['webhook-id']).to.equal(event.id);
    const seen = byId.get(event.id);
    if (seen !== undefined) expect(r.body, 'a duplicate differs').to.equal(seen);
    byId.set(event.id, r.body);
  }
  const delivered = [...byId.values()].map((b) => JSON.parse(b).message_id).sort();
  expect(delivered).to.deep.equal([...messageIds].sort());
}

async function inboxEmpty(stack: DeliveryStack, d: Device): Promise<boolean> {
  return (await stack.call('GET', '/api/messages', { token: d.token })).body.events.length === 0;
}

describe('push delivery under faults', function () {
  // Child processes start tsx (seconds on a loaded 2-core machine); nothing here is timed.
  this.timeout(60_000);
  let stack: DeliveryStack;
  let sink: Sink;
  before(async () => {
    stack = await startDeliveryStack({ SENDER_PREFETCH: '4' });
  });
  afterEach(() => sink?.close());
  after(() => stack?.close());

  it('when a sender process is killed -9 with pushes in flight and started again, then every event arrives (duplicates keep their webhook-id)', async () => {
    sink = await startSink({ otherwise: { status: 200, delayMs: 300 } });
    const { from, to } = await pair(stack.call, `${sink.url}/k`);
    const first = await stack.startSender({}, { process: true });
    const ids = await sendMany(stack, from, to, 12);
    await sink.waitFor((r) => r.length >= 2);
    await first.kill(); // the sink is still holding those requests: they were in flight
    const arrivedBeforeKill = sink.requests.length;
    expect(arrivedBeforeKill).to.be.below(12);
    const second = await stack.startSender({}, { process: true });
    await eventually(() => inboxEmpty(stack, to), 20_000, 'all delivered');
    await second.stop();
    expectEachOnce(sink.requests, ids);
  });

  it('when a sender gets SIGTERM with pushes in flight, then it records them before exiting and a new sender delivers the rest', async () => {
    sink = await startSink({ otherwise: { status: 200, delayMs: 400 } });
    const { from, to } = await pair(stack.call, `${sink.url}/t`);
    const first = await stack.startSender({}, { process: true });
    const ids = await sendMany(stack, from, to, 10);
    await sink.waitFor((r) => r.length >= 1);
    await first.stop(); // resolves when the process has exited
    // Each push it had started was answered 200 and recorded as delivered (gone from the inbox; a
    // first attempt that succeeds leaves no delivery_attempts row), none was abandoned.
    const pushed = [...new Set(sink.requests.map((r) => String(r.headers['webhook-id'])))];
    expect(pushed.length).to.be.at.least(1);
    const left = await stack.db('inbox').where({ device_id: to.deviceId }).whereIn('event_id', pushed);
    expect(left).to.deep.equal([]);
    expect(await listAttempts(stack.db, { device_id: to.deviceId })).to.deep.equal([]);
    const second = await stack.startSender({}, { process: true });
    await eventually(() => inboxEmpty(stack, to), 20_000, 'all delivered');
    await second.stop();
    expectEachOnce(sink.requests, ids);
  });

  it('when the broker force-closes the relay and sender connections, then both reconnect by themselves and pushes flow again', async () => {
    sink = await startSink();
    const sender = await stack.startSender();
    const { from, to } = await pair(stack.call, `${sink.url}/r`);
    const before = await send(stack.call, from, to, 'before');
    await sink.waitFor((r) => r.length >= 1);
    const closed =
      (await forceCloseConnections(`listener ${stack.listener.deps.config.INSTANCE_ID}`)) +
      (await forceCloseConnections(`${stack.env.AMQP_PREFIX} ${process.pid}`));
    expect(closed).to.be.at.least(2); // the listener's (relay and stream) and the in-process sender's
    const after = await send(stack.call, from, to, 'after');
    await sink.waitFor((r) => r.some((q) => q.json().message_id === after), 20_000);
    expect((await stack.call('GET', '/api/ready')).status).to.equal(200);
    await sender.stop();
    expect(sink.requests.map((r) => r.json().message_id)).to.include.members([before, after]);
  });

  it('when one receiver is slow, then it gets at most its per-origin share of pushes and other receivers are not held up', async () => {
    sink = await startSink({ otherwise: { status: 200, delayMs: 3_000 } });
    const fast = await startSink();
    try {
      const sender = await stack.startSender({ SENDER_CONNECTIONS_PER_ORIGIN: '2' });
      const slow = await pair(stack.call, `${sink.url}/slow`);
      const quick = await pair(stack.call, `${fast.url}/quick`);
      await sendMany(stack, slow.from, slow.to, 4); // as many as the prefetch
      const quickId = await send(stack.call, quick.from, quick.to, 'not stuck behind the slow one');
      await fast.waitFor((r) => r.some((q) => q.json().message_id === quickId), 20_000);
      // Without the cap all 4 slots would sit on the slow receiver for 3 s per push.
      expect(sink.requests.length).to.be.at.most(2);
      await eventually(() => inboxEmpty(stack, slow.to), 40_000, 'slow receiver served');
      await sender.stop();
    } finally {
      await fast.close();
    }
  });
});
