import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { expect } from 'chai';
import { dbState } from '../helpers/db-state.ts';
import { type Call, client, type Reply } from '../helpers/http.ts';
import { startListener, type TestListener, useListener } from '../helpers/listener.ts';
import { type Device, envelopesFor, keyOf, person } from '../helpers/people.ts';

const b64 = (n: number) => randomBytes(n).toString('base64');

function expectError(res: Reply, status: number, code?: string) {
  expect(res.status, JSON.stringify(res.body)?.slice(0, 300)).to.equal(status);
  expect(res.body).to.be.an('object');
  expect(res.body.error).to.be.a('string');
  expect(res.body.message).to.be.a('string');
  if (code) expect(res.body.error).to.equal(code);
}

describe('bad input: every class gets its 4xx JSON error and changes nothing', () => {
  let listener: TestListener;
  let call: Call;
  let a1: Device;
  let a2: Device;
  let b1: Device;
  let valid: () => { to: string; envelopes: { device_id: string; nonce: string; ciphertext: string }[] };
  before(async () => {
    listener = await startListener();
    call = client(listener.url);
    [a1, a2] = (await person(call, 2)) as [Device, Device];
    [b1] = (await person(call, 1)) as [Device];
    valid = () => ({ to: b1.username, envelopes: envelopesFor(a1, [keyOf(b1), keyOf(a2)], 'hi') });
  });
  after(() => listener.close());

  let before0: Awaited<ReturnType<typeof dbState>>;
  beforeEach(async () => {
    before0 = await dbState(listener.deps.db, [a1.userId, b1.userId]);
  });
  afterEach(async () => {
    expect(await dbState(listener.deps.db, [a1.userId, b1.userId])).to.deep.equal(before0);
  });

  const json = { 'content-type': 'application/json' };

  it('when the JSON is malformed or not an object, then 400', async () => {
    for (const raw of [
      '{',
      '{"to":',
      "{'a':1}",
      'null',
      '"text"',
      '12',
      'true',
      '{"a":1}x',
      '\u00ff\u00fe',
    ]) {
      expectError(
        await call('POST', '/api/messages', { token: a1.token, raw, headers: json }),
        400,
        'invalid_request',
      );
      expectError(await call('PATCH', '/api/users/me', { token: a1.token, raw, headers: json }), 400);
    }
    expectError(await call('POST', '/api/users', { raw: '{"username":', headers: json }), 400);
  });

  it('when fields have wrong types, are missing or unknown, then 400 names them', async () => {
    const cases: [string, string, unknown, string][] = [
      ['POST', '/api/messages', { ...valid(), to: 42 }, 'body.to'],
      ['POST', '/api/messages', { to: b1.username }, 'body.envelopes'],
      ['POST', '/api/messages', { ...valid(), envelopes: {} }, 'body.envelopes'],
      ['POST', '/api/messages', { ...valid(), from: a2.userId }, 'body'],
      ['POST', '/api/messages', { ...valid(), sender_device_id: a2.deviceId }, 'body'],
      ['POST', '/api/messages', { ...valid(), to: b1.username, group_id: a1.userId }, 'body.to'],
      ['POST', '/api/messages', { ...valid(), client_message_id: 'x'.repeat(129) }, 'body.client_message_id'],
      ['POST', '/api/messages', { ...valid(), client_message_id: 'nul\u0000' }, 'body.client_message_id'],
      ['POST', '/api/messages/ack', { up_to: '1' }, 'body.up_to'],
      ['POST', '/api/messages/ack', { up_to: 1, extra: true }, 'body'],
      ['PATCH', '/api/users/me', { display_name: ['x'] }, 'body.display_name'],
      ['PATCH', '/api/users/me', { display_name: 'a\u0000b' }, 'body.display_name'],
      ['PATCH', '/api/users/me', { phone_number: '+15551234567' }, 'body'],
      ['PATCH', '/api/devices/current', { name: 'n\u0000' }, 'body.name'],
      ['PATCH', '/api/devices/current', { public_key: b64(32) }, 'body'],
      ['DELETE', '/api/users/me', { password: 123 }, 'body.password'],
      ['POST', '/api/users', { username: 'valid_name', password: 'password1', admin: true }, 'body'],
      [
        'POST',
        '/api/users',
        { username: 'valid_name', password: 'password1', display_name: '\u0000' },
        'body.display_name',
      ],
      ['POST', '/api/login', { username: a1.username, password: a1.password }, 'body.public_key'],
      [
        'POST',
        '/api/login',
        { username: a1.username, password: a1.password, public_key: b64(32), device_id: 42 },
        'body.device_id',
      ],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await call(method, path, { token: a1.token, body });
      expectError(res, 400, 'invalid_request');
      expect(JSON.stringify(res.body.details), `${method} ${path} ${JSON.stringify(body)}`).to.contain(
        `"${field}`,
      );
    }
  });

  it('when the body is not JSON, then 415', async () => {
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
    ]) {
      const raw = JSON.stringify(valid());
      expectError(
        await call('POST', '/api/messages', { token: a1.token, raw, headers: { 'content-type': type } }),
        415,
        'unsupported_media_type',
      );
    }
    expectError(await call('POST', '/api/messages', { token: a1.token, raw: JSON.stringify(valid()) }), 415);
    expectError(
      await call('POST', '/api/users', {
        raw: 'username=x&password=y',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }),
      415,
    );
  });

  it('when the body is over 1 MiB, then 413', async () => {
    const raw = JSON.stringify({ ...valid(), client_message_id: 'x'.repeat(1024 * 1024) });
    expectError(
      await call('POST', '/api/messages', { token: a1.token, raw, headers: json }),
      413,
      'payload_too_large',
    );
    expectError(await call('POST', '/api/users', { raw, headers: json }), 413);
  });

  it('when a compressed body does not decompress, then 400', async () => {
    const res = await call('POST', '/api/messages/ack', {
      token: a1.token,
      raw: 'not gzip at all',
      headers: { ...json, 'content-encoding': 'gzip' },
    });
    expectError(res, 400, 'invalid_request');
    for (const encoding of ['deflate', 'br']) {
      const bad = await call('POST', '/api/messages/ack', {
        token: a1.token,
        raw: '{"up_to":1}',
        headers: { ...json, 'content-encoding': encoding },
      });
      expectError(bad, 400, 'invalid_request');
    }
    expectError(
      await call('POST', '/api/messages/ack', {
        token: a1.token,
        raw: '{}',
        headers: { ...json, 'content-encoding': 'rot13' },
      }),
      415,
    );
  });

  it('when base64 is bad or keys, nonces and ciphertexts have the wrong size, then 400', async () => {
    const env = () => valid().envelopes;
    const bad = (patch: Record<string, unknown>) => env().map((e, i) => (i === 0 ? { ...e, ...patch } : e));
    const bodies = [
      { envelopes: bad({ nonce: b64(23) }) },
      { envelopes: bad({ nonce: b64(25) }) },
      { envelopes: bad({ nonce: 'not base64!!!!!!!!!!!!!!!!!!!!!!' }) },
      { envelopes: bad({ nonce: randomBytes(24).toString('base64url').padEnd(32, 'A').replace(/./, '-') }) },
      { envelopes: bad({ ciphertext: '' }) },
      { envelopes: bad({ ciphertext: 'abc' }) },
      { envelopes: bad({ ciphertext: b64(64 * 1024 + 1) }) },
      { envelopes: bad({ ciphertext: ` ${b64(20)}` }) },
    ];
    for (const patch of bodies) {
      const res = await call('POST', '/api/messages', { token: a1.token, body: { ...valid(), ...patch } });
      expectError(res, 400, 'invalid_request');
      expect(JSON.stringify(res.body.details)).to.contain('body.envelopes.0');
    }
    // Ids are opaque: a device id of a shape never issued names no device, like any stranger.
    const stranger = await call('POST', '/api/messages', {
      token: a1.token,
      body: { ...valid(), envelopes: bad({ device_id: 'not-a-uuid' }) },
    });
    expectError(stranger, 409, 'device_mismatch');
    expect(stranger.body.extra_devices).to.deep.equal(['not-a-uuid']);
    for (const public_key of [b64(31), b64(33), 'x'.repeat(44), '']) {
      const res = await call('POST', '/api/login', {
        body: { username: a1.username, password: a1.password, public_key },
      });
      expectError(res, 400);
      expect(JSON.stringify(res.body.details)).to.contain('body.public_key');
    }
  });

  it('when a message has more than 1000 envelopes, then 400', async () => {
    const envelopes = Array.from({ length: 1001 }, () => ({
      device_id: crypto.randomUUID(),
      nonce: b64(24),
      ciphertext: b64(16),
    }));
    const res = await call('POST', '/api/messages', {
      token: a1.token,
      body: { to: b1.username, envelopes },
    });
    expectError(res, 400, 'invalid_request');
    expect(JSON.stringify(res.body.details)).to.contain('body.envelopes');
  });

  it('when a path parameter is malformed, then 400 or 404, never 500', async () => {
    for (const path of [
      '/api/devices/%E0%A4%A',
      '/api/devices/%00',
      '/api/devices/..%2F..%2Fetc',
      `/api/devices/${'a'.repeat(5000)}`,
    ]) {
      const res = await call('DELETE', path, { token: a1.token });
      expect(res.status, path).to.be.oneOf([400, 404]);
      expectError(res, res.status);
    }
    for (const path of ['/api/users/%E0%A4%A', '/api/users/%00abc', `/api/users/${'a'.repeat(5000)}`]) {
      const res = await call('GET', path, { token: a1.token });
      expectError(res, 400, 'invalid_request');
    }
  });
});

describe('system routes, unknown routes and methods', () => {
  const t = useListener();

  it('when asking for health with GET or HEAD, then 200 ok (HEAD without a body)', async () => {
    expect(await t.call('GET', '/api/health')).to.deep.include({ status: 200, body: { status: 'ok' } });
    const head = await t.call('HEAD', '/api/health');
    expect(head.status).to.equal(200);
    expect(head.body).to.equal(undefined);
    expect((await t.call('GET', '/api/health/')).status).to.equal(200);
  });

  it('when the database answers, then ready is 200; when a probe throws, then 503 JSON naming it', async () => {
    expect(await t.call('GET', '/api/ready')).to.deep.include({ status: 200, body: { status: 'ok' } });
    const broken = await startListener(
      {},
      { readiness: { amqp: () => Promise.reject(new Error('down')), postgres: async () => {} } },
    );
    try {
      const res = await client(broken.url)('GET', '/api/ready');
      expectError(res, 503, 'unavailable');
      expect(res.body.details).to.deep.equal({ down: ['amqp'] });
      expect(res.headers['retry-after']).to.equal('1');
    } finally {
      await broken.close();
    }
  });

  it('when fetching the server key, then the ed25519 public key in base64', async () => {
    const res = await t.call('GET', '/api/server-key');
    expect(res.status).to.equal(200);
    expect(res.body.algorithm).to.equal('ed25519');
    expect(Buffer.from(res.body.public_key, 'base64')).to.have.length(32);
    expect(res.body.public_key).to.equal(Buffer.from(t.listener.deps.signingPublicKey).toString('base64'));
  });

  it('when a route does not exist, then 404 JSON; when the method is wrong, then 405 JSON', async () => {
    for (const path of ['/api/nope', '/', '/api', '/api/users/me/extra', '/api/messages/ack/1']) {
      expectError(await t.call('GET', path), 404, 'not_found');
    }
    for (const [method, path] of [
      ['PUT', '/api/users/me'],
      ['DELETE', '/api/health'],
      ['POST', '/api/devices'],
      ['GET', '/api/messages/ack'],
      ['PATCH', '/api/login'],
      ['PROPFIND', '/api/users'],
    ] as const) {
      const res = await t.call(method, path);
      expectError(res, 405, 'method_not_allowed');
    }
  });
});

describe('requests Node refuses before the app', () => {
  const t = useListener();

  /** Writes bytes on a fresh connection and reads the answer until the server closes it. */
  function raw(text: string): Promise<string> {
    const { hostname, port } = new URL(t.listener.url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => socket.end(text));
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
      socket.on('error', reject);
    });
  }

  const parse = (answer: string) => {
    const [head = '', body = ''] = answer.split('\r\n\r\n');
    return { statusLine: head.split('\r\n')[0], head, body: JSON.parse(body) as Record<string, unknown> };
  };

  it('when the headers exceed 16 KiB, then 431 with a JSON error', async () => {
    const res = parse(
      await raw(`GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
    );
    expect(res.statusLine).to.equal('HTTP/1.1 431 Request Header Fields Too Large');
    expect(res.head).to.match(/content-type: application\/json/i);
    expect(res.body).to.deep.equal({ error: 'headers_too_large', message: 'request headers are too large' });
  });

  it('when the request is not HTTP, then 400 with a JSON error', async () => {
    for (const text of [
      'HELLO\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
      'GET / HTTP/9.9\r\n\r\n',
    ]) {
      const res = parse(await raw(text));
      expect(res.statusLine, text).to.equal('HTTP/1.1 400 Bad Request');
      expect(res.body.error).to.equal('invalid_request');
    }
  });
});
