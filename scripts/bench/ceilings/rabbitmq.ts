import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { nowMs } from '../protocol.ts';

/**
 * RabbitMQ confirmed publishes/s with amqplib: persistent 1 KiB messages on confirm channels into
 * a throwaway queue of the same type as the delivery queue, `window` unconfirmed per channel.
 */
export async function rabbitCeiling(
  amqpUrl: string,
  opts: { channels: number; window: number; durationMs: number; queueArguments: Record<string, unknown> },
): Promise<number> {
  const conn = await amqp.connect(amqpUrl);
  const queue = `bench.raw.${randomBytes(4).toString('hex')}`;
  try {
    const setup = await conn.createChannel();
    await setup.assertQueue(queue, { durable: true, arguments: opts.queueArguments });
    const body = randomBytes(1024);
    let confirmed = 0;
    const started = nowMs();
    const deadline = started + opts.durationMs;
    await Promise.all(
      Array.from({ length: opts.channels }, async () => {
        const ch = await conn.createConfirmChannel();
        await new Promise<void>((resolve, reject) => {
          let outstanding = 0;
          let finished = false;
          const pump = () => {
            while (!finished && outstanding < opts.window && nowMs() < deadline) {
              outstanding++;
              ch.sendToQueue(queue, body, { persistent: true, contentType: 'application/json' }, (err) => {
                outstanding--;
                if (err) {
                  finished = true;
                  reject(err instanceof Error ? err : new Error(String(err)));
                  return;
                }
                confirmed++;
                if (nowMs() < deadline) pump();
                else if (!outstanding && !finished) {
                  finished = true;
                  resolve();
                }
              });
            }
          };
          pump();
        });
        await ch.close();
      }),
    );
    const elapsed = nowMs() - started;
    await setup.deleteQueue(queue);
    await setup.close();
    return (confirmed * 1000) / elapsed;
  } finally {
    await conn.close();
  }
}
