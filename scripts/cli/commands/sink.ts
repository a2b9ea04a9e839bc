import { once } from 'node:events';
import type { Cli } from '../context.ts';
import { startPushSink } from '../sink.ts';

/**
 * `sink`: a local push receiver. With --set-address this device's pushes go to it, and the
 * address is cleared again before the process exits (after --count pushes, on Ctrl-C or SIGTERM),
 * so the sender does not keep retrying a closed port.
 */
export async function sink(cli: Cli): Promise<void> {
  const m = await cli.client(true);
  const host = cli.opt.host ?? '127.0.0.1';
  const max = cli.intOption('count', 0);
  const setAddress = cli.opt['set-address'];
  let seen = 0;
  let printing = Promise.resolve();
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const receiver = await startPushSink(m, {
    host,
    port: cli.intOption('port', 0),
    onEvent(e) {
      printing = printing.then(() => cli.printEvent(m, e, { verified: true })).catch(() => {});
      if (max && ++seen >= max) finish();
    },
    onReject: (reason) => process.stderr.write(`rejected push: ${reason}\n`),
  });
  process.once('SIGINT', finish);
  process.once('SIGTERM', finish);
  const url = `http://${host}:${receiver.port}/push`;
  try {
    if (setAddress) await m.setAddress(cli.opt['public-url'] ?? url);
    cli.out(`sink on ${url}${setAddress ? ', pushes for this device go there' : ''}`, {
      sink: url,
      address_set: setAddress,
    });
    await finished;
  } finally {
    receiver.server.close();
    receiver.server.closeAllConnections();
    await once(receiver.server, 'close').catch(() => {});
    await printing;
    // Awaited before the process exits: an address left behind makes the sender retry a dead port for a day.
    if (setAddress) {
      await m.setAddress(null);
      cli.note('push address cleared');
    }
  }
}
