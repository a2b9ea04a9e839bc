import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { expect } from 'chai';
import WebSocket from 'ws';
import { person, register, uniqueName } from '../helpers/people.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';

/** Opens a TLS connection to nginx and reports what was negotiated (or the handshake error). */
function handshake(
  stack: TestStack,
  opts: { ALPNProtocols?: string[]; minVersion?: 'TLSv1' | 'TLSv1.2'; maxVersion?: 'TLSv1.1' | 'TLSv1.2' },
): Promise<{ protocol: string | null; alpn: string | false | null } | { error: string }> {
  const url = new URL(stack.url);
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: url.hostname,
      port: Number(url.port),
      servername: 'localhost',
      rejectUnauthorized: false,
      // Let this client offer old protocols, so a refusal is the server's doing.
      ciphers: 'DEFAULT@SECLEVEL=0',
      ...opts,
    });
    socket.once('secureConnect', () => {
      resolve({ protocol: socket.getProtocol(), alpn: socket.alpnProtocol });
      socket.end();
    });
    socket.once('error', (err) => resolve({ error: err.message }));
  });
}

describe('edge: nginx over HTTPS in front of 3 listener processes', function () {
  this.timeout(90_000);
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ listeners: 3 });
  });
  after(() => stack?.stop());

  it('when requests arrive one after another, then least_conn spreads them over the listeners', async () => {
    const servedBy = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const res = await stack.call('GET', '/api/health');
      expect(res.status).to.equal(200);
      servedBy.add(String(res.headers['x-served-by']));
    }
    expect(servedBy.size, [...servedBy].join(', ')).to.be.at.least(2);
    for (const id of servedBy) expect(id).to.match(/^listener-[012]$/);
  });

  it('when a client claims another address in X-Forwarded-For, then the listener records the address nginx saw', async () => {
    const call = stack.callFrom('127.0.0.2');
    const spoof = { 'x-forwarded-for': '203.0.113.9' };
    const user = await register(call, uniqueName('edge'));
    const login = await call('POST', '/api/login', {
      headers: spoof,
      body: {
        username: user.username,
        password: user.password,
        public_key: Buffer.alloc(32, 7).toString('base64'),
      },
    });
    expect(login.status, JSON.stringify(login.body)).to.equal(200);
    const devices = await call('GET', '/api/devices', { token: login.body.token, headers: spoof });
    expect(devices.status).to.equal(200);
    expect(devices.body.devices[0].last_ip).to.equal('127.0.0.2');
  });

  it('when a client sends X-Request-Id, then it is returned; when it sends none, then nginx makes one', async () => {
    const given = await stack.call('GET', '/api/health', { headers: { 'x-request-id': 'edge-test.42' } });
    expect(given.headers['x-request-id']).to.equal('edge-test.42');
    const made = await stack.call('GET', '/api/health');
    expect(made.headers['x-request-id']).to.match(/^[0-9a-f]{32}$/);
    const bad = await stack.call('GET', '/api/health', { headers: { 'x-request-id': 'no spaces allowed' } });
    expect(bad.headers['x-request-id']).to.match(/^[0-9a-f]{32}$/);
  });

  it('when an API body is 2 MiB, then nginx answers 413 with the JSON error', async () => {
    const res = await stack.call('POST', '/api/messages', {
      raw: Buffer.alloc(2 * 1024 * 1024, 'a'),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).to.equal(413);
    expect(res.body).to.deep.equal({ error: 'payload_too_large', message: 'request body is too large' });
    expect(res.headers['x-served-by']).to.equal(undefined);
  });

  it('when the headers pass the buffers of nginx, then it answers 431 with the JSON error, as a listener would', async () => {
    const res = await stack.call('GET', '/api/health', { headers: { 'x-big': 'a'.repeat(20_000) } });
    expect(res.status).to.equal(431);
    expect(res.body).to.deep.equal({ error: 'headers_too_large', message: 'request headers are too large' });
    expect(res.headers['content-type']).to.match(/^application\/json/);
  });

  it('when a 2 MiB body goes to /api/files, then nginx lets it through to a listener', async () => {
    const res = await stack.call('POST', '/api/files', {
      raw: Buffer.alloc(2 * 1024 * 1024, 1),
      headers: { 'content-type': 'application/octet-stream' },
    });
    // No token: the listener (not nginx) answers, with 401.
    expect(res.headers['x-served-by']).to.match(/^listener-/);
    expect(res.status).to.equal(401);
  });

  it('when /metrics or a path outside /api is requested, then nginx answers 404 JSON', async () => {
    for (const path of ['/metrics', '/', '/index.html', '/apix']) {
      const res = await stack.call('GET', path);
      expect(res.status, path).to.equal(404);
      expect(res.body.error, path).to.equal('not_found');
      expect(res.headers['content-type']).to.match(/^application\/json/);
    }
  });

  it('when a client offers h2, then it gets HTTP/2 over TLS 1.2+; TLS 1.1 is refused', async () => {
    const h2 = await handshake(stack, { ALPNProtocols: ['h2', 'http/1.1'] });
    expect(h2).to.include({ alpn: 'h2' });
    expect(['TLSv1.2', 'TLSv1.3']).to.include((h2 as { protocol: string }).protocol);
    const tls12 = await handshake(stack, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    expect(tls12).to.include({ protocol: 'TLSv1.2' });
    const tls11 = await handshake(stack, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' });
    expect(tls11).to.have.property('error');
  });

  it('when a client opens /api/stream, then nginx upgrades it to a WebSocket on a listener', async () => {
    const [device] = await person(stack.call, 1);
    const ca = readFileSync(stack.certFile);
    const wsUrl = `${stack.url.replace(/^https/, 'wss')}/api/stream`;
    const opened = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(wsUrl, {
        ca,
        headers: { authorization: `Bearer ${device?.token}` },
      });
      ws.once('open', () => {
        ws.close();
        resolve('open');
      });
      ws.once('error', reject);
    });
    expect(opened).to.equal('open');
    const refused = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(wsUrl, {
        ca,
        headers: { authorization: `Bearer ${'x'.repeat(43)}` },
      });
      ws.once('unexpected-response', (req, res) => {
        resolve(res.statusCode ?? 0);
        ws.on('error', () => {});
        req.destroy();
      });
      ws.once('open', () => reject(new Error('upgraded with a bad token')));
    });
    expect(refused).to.equal(401);
  });

  it('when a listener is killed, then nginx routes every request around it', async () => {
    await stack.killListener(2);
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const res = await stack.call('GET', '/api/health');
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      seen.add(String(res.headers['x-served-by']));
    }
    const user = await register(stack.call, uniqueName('edge'));
    expect(user.userId).to.be.a('string');
    expect([...seen].sort()).to.deep.equal(['listener-0', 'listener-1']);
  });
});
