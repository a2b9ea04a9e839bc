import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { type DeliveryStack, startDeliveryStack } from '../helpers/sender.ts';
import { type Sink, startSink } from '../helpers/sink.ts';
import { pair, send } from './people.ts';

const run = promisify(execFile);

describe('push delivery on classic queues (AMQP_QUEUE_TYPE=classic)', () => {
  let stack: DeliveryStack;
  let sink: Sink;
  before(async () => {
    stack = await startDeliveryStack({ AMQP_QUEUE_TYPE: 'classic' });
    await stack.startSender();
    sink = await startSink({ script: [{ status: 500 }] });
  });
  after(async () => {
    await sink?.close();
    await stack?.close();
  });

  it('when a push fails once, then it is retried through the classic delay tiers and arrives', async () => {
    const { from, to } = await pair(stack.call, `${sink.url}/c`);
    const id = await send(stack.call, from, to, 'classic');
    const reqs = await sink.waitFor((r) => r.length >= 2);
    expect(reqs.map((r) => r.json().message_id)).to.deep.equal([id, id]);
    const { stdout } = await run('rabbitmqctl', ['list_queues', 'name', 'type', '-q', '--no-table-headers']);
    const types = stdout
      .split('\n')
      .filter((l) => l.startsWith(`${stack.env.AMQP_PREFIX}.`))
      .map((l) => l.split(/\s+/)[1]);
    expect(types.length).to.be.at.least(3);
    expect(new Set(types)).to.deep.equal(new Set(['classic']));
  });
});
