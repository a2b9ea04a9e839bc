import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Messenger, Received } from '../../common/client/index.ts';

const MAX_BODY = 1024 * 1024;

export interface PushSink {
  server: Server;
  port: number;
}

/**
 * A local push receiver: verifies each POST as a Standard Webhook signed by the server key and
 * decrypts it (`receivePush`), answers 204 (delivered) and hands the event on; anything that
 * does not verify gets 401 and is reported, never printed as a message.
 */
export async function startPushSink(
  m: Messenger,
  opts: {
    host: string;
    port: number;
    onEvent: (e: Received) => void;
    onReject: (reason: string) => void;
  },
): Promise<PushSink> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on('end', async () => {
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      let event: Received;
      try {
        event = await m.receivePush(req.headers, Buffer.concat(chunks));
      } catch (err) {
        opts.onReject((err as Error).message);
        res.writeHead(401, { 'content-type': 'text/plain' }).end('signature rejected\n');
        return;
      }
      res.writeHead(204).end();
      opts.onEvent(event);
    });
  });
  server.listen(opts.port, opts.host);
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}
