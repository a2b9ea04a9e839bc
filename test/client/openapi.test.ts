import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { compileErrors, validate } from '@readme/openapi-parser';
import { expect } from 'chai';
import nacl from 'tweetnacl';
import { createApp } from '../../listener/app.ts';
import { event as eventSchema } from '../../listener/http/event-schemas.ts';
import { buildOpenApi, openApiPath } from '../../listener/http/openapi.ts';
import { deviceMismatch } from '../../listener/http/schemas.ts';
import { routes } from '../../listener/routes/index.ts';
import { webhookHeaders } from '../../sender/webhook-signature.ts';
import { pullAll } from '../conversations/helpers.ts';
import { type Call, client } from '../helpers/http.ts';
import { startListener, type TestListener } from '../helpers/listener.ts';
import { envelopesFor, keyOf, person } from '../helpers/people.ts';

// biome-ignore lint/suspicious/noExplicitAny: the document is arbitrary JSON walked by the assertions
type Doc = any;

const EVENT_TYPES = ['message', 'message.edited', 'message.deleted', 'receipt', 'group.updated'];

/** A `#/components/schemas/X` reference resolved in `doc`. */
function deref(doc: Doc, schema: Doc): Doc {
  const ref: string | undefined = schema?.$ref;
  return ref ? doc.components.schemas[ref.replace('#/components/schemas/', '')] : schema;
}

/** The `error` codes the document allows for one answer of one operation (`[]` when none). */
function documentedCodes(doc: Doc, method: string, path: string, status: number): string[] {
  const answer = doc.paths[path]?.[method]?.responses?.[String(status)];
  const schema = answer?.content?.['application/json']?.schema;
  return schema ? codesOf(doc, schema) : [];
}

function codesOf(doc: Doc, schema: Doc): string[] {
  if (schema.oneOf) return schema.oneOf.flatMap((one: Doc) => codesOf(doc, one));
  for (const part of (schema.allOf ?? [schema]).map((p: Doc) => deref(doc, p))) {
    const prop = part?.properties?.error;
    if (prop?.enum) return prop.enum;
    if (prop?.const !== undefined) return [prop.const];
  }
  return [];
}

/** A WebSocket upgrade request's answer when it is refused (status and JSON body). */
function refusedUpgrade(
  base: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: Doc }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}/api/stream`, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': Buffer.from(nacl.randomBytes(16)).toString('base64'),
        ...headers,
      },
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      reject(new Error('the upgrade was accepted'));
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Method + OpenAPI path of every route the Koa router of a real app serves. */
function servedByRouter(listener: TestListener): string[] {
  const app = createApp(listener.deps);
  const dispatch = app.middleware.find((m) => 'router' in m) as unknown as {
    router: { stack: { path: string; methods: string[] }[] };
  };
  expect(dispatch, 'the router middleware').to.not.equal(undefined);
  return dispatch.router.stack.flatMap((layer) =>
    layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m.toLowerCase()} ${openApiPath(layer.path)}`),
  );
}

describe('OpenAPI document', () => {
  let listener: TestListener;
  let served: Doc;
  before(async () => {
    listener = await startListener();
    const res = await client(listener.url)('GET', '/api/openapi.json');
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.match(/^application\/json/);
    served = res.body;
  });
  after(() => listener.close());

  it('when docs/openapi.json is compared with the served document, then it is current (else: npm run openapi)', () => {
    const committed = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8'));
    expect(committed, 'docs/openapi.json is stale: run `npm run openapi`').to.deep.equal(served);
  });

  it('when validated by @readme/openapi-parser, then it is a valid OpenAPI 3.1 document', async () => {
    expect(served.openapi).to.equal('3.1.0');
    const result = await validate(structuredClone(served));
    expect(result.valid, result.valid ? '' : compileErrors(result)).to.equal(true);
  });

  it('when served, then it is what the generator builds from the route definitions', () => {
    expect(served).to.deep.equal(JSON.parse(JSON.stringify(buildOpenApi(routes))));
  });

  it('when the Koa router serves a route, then the document has it (and nothing the router lacks)', () => {
    const fromRouter = servedByRouter(listener);
    expect(fromRouter.length).to.be.greaterThan(10);
    const documented = Object.entries(served.paths as Record<string, object>).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m} ${p}`),
    );
    expect([...new Set(documented)].sort()).to.deep.equal([...new Set(fromRouter)].sort());
  });

  it('when a route takes input, needs auth or declares answers, then its operation lists those errors', () => {
    for (const r of routes) {
      const op = served.paths[openApiPath(r.path)]?.[r.method];
      const where = `${r.method.toUpperCase()} ${r.path}`;
      expect(op, where).to.be.an('object');
      const statuses = Object.keys(op.responses);
      const expected = [
        ...Object.keys(r.responses),
        '429',
        '503',
        ...(r.body || r.rawBody || r.query || r.params ? ['400'] : []),
        ...(r.auth ? ['401'] : []),
      ];
      expect(statuses, where).to.include.members(expected);
      for (const s of statuses.filter((s) => Number(s) >= 400 && !r.responses[Number(s)]?.schema)) {
        const schema = op.responses[s].content['application/json'].schema;
        expect(schema.allOf?.[0], `${where} ${s}`).to.deep.equal({ $ref: '#/components/schemas/Error' });
      }
      for (const s of statuses.filter((s) => Number(s) >= 400)) {
        const codes = documentedCodes(served, r.method, openApiPath(r.path), Number(s));
        expect(codes, `${where} ${s}: its error codes`).to.not.be.empty;
        for (const code of codes) expect(code, `${where} ${s}`).to.match(/^[a-z][a-z0-9_]*$/);
      }
      expect(op.security, where).to.deep.equal(r.auth ? [{ bearer: [] }] : []);
      for (const name of r.path.match(/:(\w+)/g) ?? []) {
        const param = op.parameters?.find((p: Doc) => p.in === 'path' && p.name === name.slice(1));
        expect(param, `${where} path parameter ${name}`).to.include({ required: true });
      }
    }
  });

  it('when schemas carry input transforms, then the document shows what a client sends', () => {
    const register = served.paths['/api/users'].post.requestBody.content['application/json'].schema;
    expect(register.required).to.include.members(['username', 'password']);
    expect(register.properties.username.type).to.equal('string');
    const pull = served.paths['/api/messages'].get.parameters.map((p: Doc) => [p.name, p.in, p.required]);
    expect(pull).to.deep.include.members([
      ['after', 'query', false],
      ['limit', 'query', false],
    ]);
    const upload = served.paths['/api/files'].post;
    expect(Object.keys(upload.requestBody.content)).to.deep.equal(['application/octet-stream']);
    expect(Object.keys(served.paths['/api/files/{file_id}'].get.responses['200'].content)).to.deep.equal([
      'application/octet-stream',
    ]);
    expect(served.components.schemas.Error.required).to.deep.equal(['error', 'message']);
    expect(served.components.securitySchemes.bearer).to.include({ type: 'http', scheme: 'bearer' });
  });

  it('when a send misses a device, then the real 409 body matches the documented DeviceMismatch schema', async () => {
    const call = client(listener.url);
    const [a] = await person(call, 1);
    const [b] = await person(call, 1);
    if (!a || !b) throw new Error('setup');
    const res = await call('POST', '/api/messages', {
      token: a.token,
      body: { to: b.username, envelopes: [] },
    });
    expect(res.status).to.equal(409);
    const parsed = deviceMismatch.safeParse(res.body);
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).to.equal(true);
    expect(res.body.missing_devices.map((d: Doc) => d.device_id)).to.deep.equal([b.deviceId]);
    const documented = served.paths['/api/messages'].post.responses['409'].content['application/json'].schema;
    expect(documented).to.deep.equal({ $ref: '#/components/schemas/DeviceMismatch' });
  });
  it('when an answer can carry several error codes, then its `error` enum lists exactly those', () => {
    const codes = (method: string, path: string, status: number) =>
      documentedCodes(served, method, path, status);
    expect(codes('post', '/api/users', 409)).to.have.members(['username_taken', 'phone_number_taken']);
    expect(codes('post', '/api/login', 401)).to.deep.equal(['invalid_credentials']);
    expect(codes('post', '/api/login', 409)).to.have.members(['device_key_mismatch', 'too_many_devices']);
    expect(codes('post', '/api/login', 429)).to.deep.equal(['rate_limited']);
    expect(codes('patch', '/api/users/me', 403)).to.deep.equal(['wrong_password']);
    expect(codes('delete', '/api/users/me', 403)).to.deep.equal(['wrong_password']);
    expect(codes('post', '/api/groups/{group_id}/members', 409)).to.have.members([
      'group_full',
      'too_many_groups',
    ]);
    expect(codes('post', '/api/groups/{group_id}/members', 403)).to.deep.equal(['forbidden']);
    expect(codes('get', '/api/users/{username}', 404)).to.deep.equal(['not_found']);
    expect(codes('get', '/api/users/{username}', 401)).to.deep.equal(['unauthorized']);
    expect(codes('post', '/api/messages', 409)).to.deep.equal(['device_mismatch']);
    expect(codes('put', '/api/messages/{message_id}', 409)).to.deep.equal(['device_mismatch']);
    expect(codes('get', '/api/stream', 426)).to.deep.equal(['upgrade_required']);
  });

  it('when real requests fail, then each answer is a status and error code the document lists for that operation', async () => {
    const call: Call = client(listener.url);
    const [a] = await person(call, 1);
    const [b] = await person(call, 1);
    if (!a || !b) throw new Error('setup');
    const cases: [string, string, Promise<{ status: number; body: Doc }>][] = [
      [
        'post',
        '/api/users',
        call('POST', '/api/users', { body: { username: a.username, password: 'x'.repeat(8) } }),
      ],
      [
        'post',
        '/api/login',
        call('POST', '/api/login', { body: { ...loginOf(a), password: 'wrong password' } }),
      ],
      [
        'post',
        '/api/login',
        call('POST', '/api/login', {
          body: { ...loginOf(a), device_id: a.deviceId, public_key: keyOf(b).public_key },
        }),
      ],
      ['get', '/api/users/{username}', call('GET', '/api/users/nobody_here_at_all', { token: a.token })],
      ['get', '/api/users', call('GET', '/api/users', { token: a.token })],
      ['get', '/api/messages', call('GET', '/api/messages?limit=0', { token: a.token })],
      ['get', '/api/devices', call('GET', '/api/devices')],
      [
        'patch',
        '/api/users/me',
        call('PATCH', '/api/users/me', {
          token: a.token,
          body: { password: 'a new password', current_password: 'nope' },
        }),
      ],
      [
        'post',
        '/api/files',
        call('POST', '/api/files', { token: a.token, raw: 'x', headers: { 'content-type': 'text/plain' } }),
      ],
      [
        'post',
        '/api/messages',
        call('POST', '/api/messages', { token: a.token, body: { to: b.username, envelopes: [] } }),
      ],
      ['get', '/api/stream', call('GET', '/api/stream')],
      [
        'get',
        '/api/stream',
        refusedUpgrade(listener.url, { Authorization: 'Bearer not-a-token-anyone-was-given' }),
      ],
    ];
    const answers = await Promise.all(cases.map(([, , p]) => p));
    const seen = answers.map((res, i) => {
      const [method, path] = cases[i] ?? [];
      const where = `${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`;
      expect(res.status, where).to.be.at.least(400);
      expect(documentedCodes(served, method ?? '', path ?? '', res.status), where).to.include(res.body.error);
      return `${res.status} ${res.body.error}`;
    });
    expect(seen).to.include.members([
      '409 device_key_mismatch',
      '401 invalid_credentials',
      '426 upgrade_required',
    ]);
    expect(seen.at(-1)).to.equal('401 unauthorized');
    const invalid = answers[cases.findIndex(([, path]) => path === '/api/messages')];
    expect(invalid?.body.details).to.deep.equal([
      { field: 'query.limit', problem: invalid?.body.details[0].problem },
    ]);
    const documented = served.paths['/api/messages'].get.responses['400'].content['application/json'].schema;
    expect(documented.allOf[1].properties.details.items.required).to.deep.equal(['field', 'problem']);
  });

  it('when /api/stream is documented, then it lists its upgrade, 400, 401 and 426 answers', () => {
    const op = served.paths['/api/stream'].get;
    expect(Object.keys(op.responses)).to.include.members(['101', '400', '401', '426', '503']);
    expect(documentedCodes(served, 'get', '/api/stream', 401)).to.deep.equal(['unauthorized']);
  });

  it('when the document names its servers, then it is the HTTPS edge with host and port variables', () => {
    expect(served.servers).to.be.an('array').that.is.not.empty;
    const [edge] = served.servers;
    expect(edge.url).to.equal('https://{host}:{port}');
    expect(edge.variables.host.default).to.equal('127.0.0.1');
    expect(edge.variables.port.default).to.equal('8443');
  });

  it('when GET /api/users?username= is looked up, then it is documented with its required query parameter', () => {
    const op = served.paths['/api/users'].get;
    expect(op.parameters).to.deep.include({
      name: 'username',
      in: 'query',
      required: true,
      schema: { type: 'string' },
    });
    expect(op.responses['200'].content['application/json'].schema).to.deep.equal({
      $ref: '#/components/schemas/DirectoryEntry',
    });
    expect(op.security).to.deep.equal([{ bearer: [] }]);
  });

  it('when inbox events are documented, then there is one schema per type, discriminated by `type`', () => {
    const page = deref(
      served,
      served.paths['/api/messages'].get.responses['200'].content['application/json'].schema,
    );
    expect(page.properties.events.items).to.deep.equal({ $ref: '#/components/schemas/Event' });
    expect(JSON.stringify(page)).to.not.include('additionalProperties');
    const union = served.components.schemas.Event;
    expect(union.discriminator.propertyName).to.equal('type');
    expect(Object.keys(union.discriminator.mapping)).to.have.members(EVENT_TYPES);
    expect(union.oneOf.map((o: Doc) => o.$ref)).to.have.members(Object.values(union.discriminator.mapping));
    for (const [type, ref] of Object.entries(union.discriminator.mapping)) {
      const one = deref(served, { $ref: ref });
      expect(one.properties.type, type).to.deep.include({ const: type });
      expect(one.required, type).to.include.members([
        'id',
        'seq',
        'type',
        'message_id',
        'group_id',
        'sent_at',
        'from',
      ]);
    }
  });

  it('when every event type is produced for real, then each pulled event matches its documented schema', async () => {
    const call: Call = client(listener.url);
    const [a] = await person(call, 1);
    const [b] = await person(call, 1);
    if (!a || !b) throw new Error('setup');
    const ok = (res: { status: number; body: Doc }, status: number) => {
      expect(res.status, JSON.stringify(res.body)).to.equal(status);
      return res.body;
    };
    ok(
      await call('POST', '/api/groups', { token: a.token, body: { name: 'docs', members: [b.username] } }),
      201,
    );
    const sent = ok(
      await call('POST', '/api/messages', {
        token: a.token,
        body: { to: b.username, envelopes: envelopesFor(a, [keyOf(b)], 'hi') },
      }),
      201,
    );
    const path = `/api/messages/${sent.message_id}`;
    ok(
      await call('PUT', path, { token: a.token, body: { envelopes: envelopesFor(a, [keyOf(b)], 'hi!') } }),
      200,
    );
    const beforeDelete = await pullAll(call, b);
    ok(await call('POST', `${path}/receipts`, { token: b.token, body: { type: 'read' } }), 204);
    ok(await call('DELETE', path, { token: a.token }), 204);
    const events = [...beforeDelete, ...(await pullAll(call, b)), ...(await pullAll(call, a))];
    expect([...new Set(events.map((e) => e.type))]).to.have.members(EVENT_TYPES);
    const mapping = served.components.schemas.Event.discriminator.mapping;
    for (const e of events) {
      const parsed = eventSchema.safeParse(e);
      expect(parsed.success, `${e.type}: ${JSON.stringify(parsed.error?.issues)}`).to.equal(true);
      const documented = deref(served, { $ref: mapping[e.type] });
      expect(Object.keys(e), e.type).to.include.members(documented.required);
      expect(Object.keys(documented.properties), e.type).to.include.members(Object.keys(e));
    }
  });

  it('when the push is documented as a webhook, then its headers, body and answers are there and a real signature fits', () => {
    const push = served.webhooks.event.post;
    const headers = Object.fromEntries(push.parameters.map((p: Doc) => [p.name, p]));
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature'])
      expect(headers[name], name).to.include({ in: 'header', required: true });
    expect(push.requestBody.content['application/json'].schema).to.deep.equal({
      $ref: '#/components/schemas/Event',
    });
    expect(Object.keys(push.responses)).to.include.members(['2XX', '410', 'default']);
    const keys = nacl.sign.keyPair();
    const real = webhookHeaders(
      keys.secretKey,
      'e0b3c1a2-0000-4000-8000-000000000000',
      1_790_000_000,
      '{"id":"…"}',
    );
    for (const [name, value] of Object.entries(real)) {
      const pattern = headers[name].schema.pattern;
      if (pattern) expect(value, name).to.match(new RegExp(pattern));
    }
  });
});

function loginOf(d: { username: string; password: string; keys: nacl.BoxKeyPair }) {
  return {
    username: d.username,
    password: d.password,
    public_key: Buffer.from(d.keys.publicKey).toString('base64'),
  };
}
