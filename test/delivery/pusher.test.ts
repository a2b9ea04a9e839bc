import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import nacl from 'tweetnacl';
import { createPusher, type Pusher } from '../../sender/deliver.ts';
import { testConfig } from '../helpers/env.ts';

/** One push's HTTP exchange against real local servers that answer in odd ways. */
describe('a push against receivers that answer oddly', () => {
  let pusher: Pusher;
  const servers: Server[] = [];
  const serve = async (handler: RequestListener): Promise<string> => {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/push`;
  };
  before(() => {
    pusher = createPusher(
      testConfig({ SENDER_TIMEOUT_MS: '500', SENDER_ALLOW_PRIVATE_ADDRESSES: 'true' }),
      nacl.sign.keyPair().secretKey,
    );
  });
  after(async () => {
    await pusher.close();
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });

  it('when the answer carries a large body, then it counts by its status and the next push still goes out', async () => {
    const url = await serve((_req, res) => res.writeHead(200).end(Buffer.alloc(1024 * 1024)));
    for (let i = 0; i < 2; i++) {
      const r = await pusher.push(url, `e${i}`, '{}');
      expect(r.answer).to.deep.equal({ kind: 'response', status: 200, retryAfter: undefined });
    }
  });

  it('when the status comes at once and the body never ends, then the status counts, after the whole-push timeout', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(429, { 'retry-after': '7' });
      res.write('x');
    });
    const r = await pusher.push(url, 'e', '{}');
    expect(r.answer).to.deep.equal({ kind: 'response', status: 429, retryAfter: '7' });
    expect(r.durationMs).to.be.within(400, 2_000);
  });

  it('when no status comes in time, then it is a timeout; when nobody listens, a connection error', async () => {
    const silent = await serve(() => {});
    const r = await pusher.push(silent, 'e', '{}');
    expect(r.answer).to.deep.equal({ kind: 'error', errorClass: 'timeout' });
    expect(r.durationMs).to.be.within(400, 2_000);
    const closed = await serve(() => {});
    servers.at(-1)?.close();
    const refused = await pusher.push(closed, 'e', '{}');
    expect(refused.answer).to.deep.equal({ kind: 'error', errorClass: 'connection' });
  });
});
