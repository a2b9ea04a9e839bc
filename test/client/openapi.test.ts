import { readFileSync } from 'node:fs';
import { compileErrors, validate } from '@readme/openapi-parser';
import { expect } from 'chai';
import { createApp } from '../../listener/app.ts';
import { buildOpenApi, openApiPath } from '../../listener/http/openapi.ts';
import { deviceMismatch } from '../../listener/http/schemas.ts';
import { routes } from '../../listener/routes/index.ts';
import { client } from '../helpers/http.ts';
import { startListener, type TestListener } from '../helpers/listener.ts';
import { person } from '../helpers/people.ts';

// biome-ignore lint/suspicious/noExplicitAny: the document is arbitrary JSON walked by the assertions
type Doc = any;

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
        expect(op.responses[s].content['application/json'].schema, `${where} ${s}`).to.deep.equal({
          $ref: '#/components/schemas/Error',
        });
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
});
