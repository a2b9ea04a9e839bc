import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import WebSocket from 'ws';
import { freePort } from '../../scripts/stack/processes.ts';
import type { Reply } from '../helpers/http.ts';
import { person, uniqueName } from '../helpers/people.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';

function expectNginx429(res: Reply): void {
  expect(res.status).to.equal(429);
  expect(res.body).to.deep.equal({ error: 'rate_limited', message: 'too many requests, retry later' });
  expect(res.headers['retry-after']).to.equal('1');
  expect(res.headers['content-type']).to.match(/^application\/json/);
  // Answered by nginx itself: no listener was bothered.
  expect(res.headers['x-served-by']).to.equal(undefined);
}

describe('edge: per-IP rate limits at nginx', function () {
  this.timeout(90_000);
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({
      listeners: 2,
      limits: { ratePerSecond: 5, burst: 10, authPerMinute: 1, authBurst: 2, streamConnections: 2 },
    });
  });
  after(() => stack?.stop());

  it('when one IP bursts far above its limit, then the excess gets JSON 429 + Retry-After and another IP still passes', async () => {
    const greedy = stack.callFrom('127.0.0.5');
    const replies = await Promise.all(Array.from({ length: 200 }, () => greedy('GET', '/api/health')));
    const ok = replies.filter((r) => r.status === 200);
    const limited = replies.filter((r) => r.status === 429);
    expect(ok.length + limited.length).to.equal(200);
    // 1 + burst 10 pass at once; more only as the 5 r/s refill allows.
    expect(ok.length).to.be.at.least(11);
    expect(limited.length).to.be.greaterThan(0);
    for (const r of limited) expectNginx429(r);
    const polite = await stack.callFrom('127.0.0.6')('GET', '/api/health');
    expect(polite.status).to.equal(200);
  });

  it('when one IP repeats POST /api/login, then the stricter zone answers 429 while its other requests pass', async () => {
    const call = stack.callFrom('127.0.0.7');
    const statuses: number[] = [];
    let last: Reply | undefined;
    for (let i = 0; i < 6; i++) {
      last = await call('POST', '/api/login', {
        body: {
          username: uniqueName('nobody'),
          password: 'wrong password',
          public_key: Buffer.alloc(32).toString('base64'),
        },
      });
      statuses.push(last.status);
    }
    // 1 + burst 2 reach the listener (401), the rest are stopped at nginx.
    expect(statuses.slice(0, 3)).to.deep.equal([401, 401, 401]);
    expect(statuses.slice(3)).to.deep.equal([429, 429, 429]);
    expectNginx429(last as Reply);
    const read = await call('GET', '/api/health');
    expect(read.status).to.equal(200);
    const elsewhere = await stack.callFrom('127.0.0.8')('POST', '/api/users', {
      body: { username: uniqueName('edge'), password: 'correct horse battery' },
    });
    expect(elsewhere.status).to.equal(201);
  });

  it('when one IP opens more WebSockets than allowed, then the extra upgrade gets JSON 429 and the open ones stay', async () => {
    const call = stack.callFrom('127.0.0.11');
    const [device] = await person(call, 1);
    const ca = readFileSync(stack.certFile);
    const url = `${stack.url.replace(/^https/, 'wss')}/api/stream`;
    const open = (): Promise<WebSocket | { status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(url, {
          ca,
          localAddress: '127.0.0.11',
          headers: { authorization: `Bearer ${device?.token}` },
        });
        ws.once('open', () => resolve(ws));
        ws.once('unexpected-response', (req, res) => {
          let body = '';
          res.on('data', (c: Buffer) => {
            body += c;
          });
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, body });
            ws.on('error', () => {});
            req.destroy();
          });
        });
        ws.once('error', reject);
      });
    const first = await open();
    const second = await open();
    const third = await open();
    expect(first).to.be.instanceOf(WebSocket);
    expect(second).to.be.instanceOf(WebSocket);
    expect(third).to.deep.include({ status: 429 });
    expect(JSON.parse((third as { body: string }).body).error).to.equal('rate_limited');
    for (const ws of [first, second]) expect((ws as WebSocket).readyState).to.equal(WebSocket.OPEN);
    const other = await stack.call('GET', '/api/health');
    expect(other.status).to.equal(200);
    for (const ws of [first, second]) if (ws instanceof WebSocket) ws.close();
  });
});

describe('edge: no listener answers', function () {
  this.timeout(60_000);
  let stack: TestStack;
  before(async () => {
    // nginx alone, its only upstream a port nobody listens on.
    stack = await startTestStack({ listeners: 0, extraUpstreams: [await freePort()], waitReady: false });
  });
  after(() => stack?.stop());

  it('when every upstream is down, then nginx answers 502 JSON with Retry-After', async () => {
    for (const [method, path] of [
      ['GET', '/api/health'],
      ['POST', '/api/messages'],
    ] as const) {
      const res = await stack.call(method, path, method === 'POST' ? { body: {} } : {});
      expect(res.status, path).to.equal(502);
      expect(res.body).to.deep.equal({ error: 'bad_gateway', message: 'no listener answered, retry later' });
      expect(res.headers['retry-after']).to.equal('1');
      expect(res.headers['x-request-id']).to.match(/^[0-9a-f]{32}$/);
    }
  });
});
