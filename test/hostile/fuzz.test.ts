import { Agent, request } from 'node:http';
import { expect } from 'chai';
import fc from 'fast-check';
import type { AnyRoute } from '../../listener/http/route.ts';
import { routes } from '../../listener/routes/index.ts';
import { dbState } from '../helpers/db-state.ts';
import { client } from '../helpers/http.ts';
import { startListener, type TestListener } from '../helpers/listener.ts';
import { type Device, envelopesFor, keyOf, person } from '../helpers/people.ts';
import { hostileKeys, hostileString, hostileValue, nearSchema, type Vocabulary } from './arbitraries.ts';
import { type FuzzRequest, oracle } from './oracle.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 1600);
const MIN_SENT = 1000;
const WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function encodeSegment(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return 'x%ED%A0%80'; // a lone surrogate, as a careless client would encode it
  }
}

/** Long enough to pass Node's 16 KiB header limit now and then (431, answered as JSON). */
const URL_PART_MAX = 12_000;

function queryString(value: unknown): string {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return '';
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(value)) {
    for (const item of Array.isArray(v) ? v : [v]) {
      out.append(k, typeof item === 'string' ? item : (JSON.stringify(item) ?? ''));
    }
  }
  try {
    return out.toString().slice(0, 2 * URL_PART_MAX);
  } catch {
    return 'x=%ED%A0%80';
  }
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v) ?? '');

function bodyArb(r: AnyRoute, v: Vocabulary): fc.Arbitrary<Buffer | undefined> {
  const shaped = r.body ? nearSchema(r.body, v) : hostileValue(v);
  const text = shaped.map(json);
  return fc.oneof(
    { weight: 12, arbitrary: text },
    { weight: 2, arbitrary: hostileValue(v).map(json) },
    {
      weight: 1,
      arbitrary: fc.tuple(text, fc.nat()).map(([b, n]) => b.subarray(0, b.length ? n % b.length : 0)),
    },
    {
      // invalid UTF-8 spliced into otherwise JSON text
      weight: 2,
      arbitrary: fc
        .tuple(
          text,
          fc.nat(),
          fc.constantFrom(
            [0xff],
            [0xfe, 0xff],
            [0xc0, 0x80],
            [0xed, 0xa0, 0x80],
            [0xf4, 0x90, 0x80, 0x80],
            [0xe2, 0x82],
          ),
        )
        .map(([b, n, bad]) => {
          const at = b.length ? n % b.length : 0;
          return Buffer.concat([b.subarray(0, at), Buffer.from(bad), b.subarray(at)]);
        }),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(64, 1000, 100_000), fc.boolean())
        .map(([d, arr]) =>
          Buffer.from(arr ? `${'['.repeat(d)}${']'.repeat(d)}` : `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`),
        ),
    },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)) },
    { weight: 1, arbitrary: fc.constant(Buffer.from(`{"x":"${'y'.repeat(1024 * 1024)}"}`)) },
  );
}

function describeRequest(r: FuzzRequest): string {
  const body = r.body
    ? `${r.body.length} bytes ${JSON.stringify(r.body.subarray(0, 160).toString('latin1'))}`
    : 'none';
  const headers = Object.entries(r.headers).map(([k, h]) => `${k}: ${h.slice(0, 60)}`);
  return `${r.method} ${r.path.slice(0, 200)}?${r.query.slice(0, 200)} [${headers.join('; ')}] body ${body}`;
}

// A fresh connection per request: one that the listener answered early is not reused.
const agent = new Agent({ keepAlive: false });

/**
 * node:http rather than undici: when the listener answers early (413 before reading a huge
 * body), undici reports the connection reset instead of the answer; node:http hands it over.
 */
function send(base: string, r: FuzzRequest): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(base);
  // The path goes out byte for byte: a URL object would resolve `%2e%2e` and `//` first.
  const path = `${r.path}${r.query ? `?${r.query}` : ''}`;
  return new Promise((resolve, reject) => {
    let answered = false;
    // node:http sends a DELETE body without Content-Length unless told.
    const headers = r.body ? { ...r.headers, 'content-length': String(r.body.length) } : r.headers;
    const req = request({ hostname, port, path, method: r.method, headers, agent }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.end(r.body);
  });
}

interface Tokens {
  valid: string;
  /** Valid token but of no session any more, garbage, badly formed headers… */
  invalid: string[];
}

function requestArb(r: AnyRoute, v: Vocabulary, tokens: Tokens): fc.Arbitrary<FuzzRequest> {
  const paramShape = (r.params as unknown as { shape?: Record<string, unknown> } | undefined)?.shape ?? {};
  const names = [...r.path.matchAll(/:(\w+)/g)].map((m) => m[1] ?? '');
  const segment = (name: string) =>
    fc.oneof(
      {
        weight: 6,
        arbitrary: nearSchema(paramShape[name], v).map((x) =>
          encodeSegment((typeof x === 'string' ? x : String(x)).slice(0, URL_PART_MAX)),
        ),
      },
      {
        weight: 1,
        arbitrary: fc.constantFrom('%', '%E0%A4%A', '%00', '..', '%2e%2e', '%2F', 'a%2Fb', '%u0041'),
      },
    );
  const path = fc
    .tuple(
      fc.tuple(...names.map(segment)),
      fc.oneof({ weight: 9, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constant('/') }),
    )
    .map(([segs, slash]) => {
      let i = 0;
      return r.path.replace(/:(\w+)/g, () => segs[i++] ?? '') + slash;
    });
  const query = fc.oneof(
    { weight: 6, arbitrary: (r.query ? nearSchema(r.query, v) : fc.constant({})).map(queryString) },
    {
      weight: 1,
      arbitrary: fc
        .dictionary(fc.oneof(hostileKeys, fc.string({ maxLength: 8 })), hostileString(v), { maxKeys: 3 })
        .map(queryString),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '%zz=1',
        '&&=',
        'a[b]=1',
        'limit=1&limit=2',
        'after=-1',
        'limit=99999',
        '__proto__[x]=1',
      ),
    },
  );
  const method = fc.oneof(
    { weight: 6, arbitrary: fc.constant(r.method.toUpperCase()) },
    { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS') },
  );
  const auth = fc.oneof(
    { weight: 5, arbitrary: fc.constant({ header: `Bearer ${tokens.valid}`, valid: true }) },
    { weight: 3, arbitrary: fc.constantFrom(...tokens.invalid).map((header) => ({ header, valid: false })) },
  );
  const contentType = fc.oneof(
    { weight: 10, arbitrary: fc.constant('application/json') },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '',
        'application/json; charset=utf-8',
        'application/json; charset=latin1',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=zz',
        'application/vnd.api+json',
        'application/octet-stream',
        'application/xml',
      ),
    },
  );
  /** `arb` once in `1 + absent` requests. */
  const some = <T>(arb: fc.Arbitrary<T>, absent: number) =>
    fc.oneof({ weight: absent, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
  const extra = fc
    .record({
      'x-forwarded-for': some(
        fc.constantFrom('1.2.3.4', 'garbage', '::1, 10.0.0.1', ', ,', '999.1.1.1', '::ffff:127.0.0.1'),
        2,
      ),
      'x-request-id': some(fc.constantFrom('a b', 'x'.repeat(300), '../..', 'ok-id'), 2),
      'user-agent': some(fc.constantFrom('', 'x'.repeat(2000), 'Mozilla/5.0'), 2),
      'content-encoding': some(
        fc.constantFrom('gzip', 'deflate', 'br', 'rot13', 'compress', 'gzip, gzip'),
        12,
      ),
    })
    .map(
      (h) =>
        Object.fromEntries(Object.entries(h).filter(([, x]) => x !== undefined)) as Record<string, string>,
    );
  return fc
    .record({ method, path, query, auth, contentType, extra, body: bodyArb(r, v) })
    .map(({ method, path, query, auth, contentType, extra, body }) => {
      const headers: Record<string, string> = { ...extra };
      if (!WITH_BODY.has(method) || !extra['content-encoding'] || contentType === '')
        delete headers['content-encoding'];
      if (auth.header) headers.authorization = auth.header;
      if (contentType) headers['content-type'] = contentType;
      const req: FuzzRequest = {
        method,
        path,
        query,
        headers,
        body: WITH_BODY.has(method) ? body : undefined,
        validToken: auth.valid,
      };
      // Counterexamples print short: a 1 MiB body would drown the report.
      return Object.assign(req, { [fc.toStringMethod]: () => describeRequest(req) });
    });
}

describe('hostile input: property-based fuzzing of every route', function () {
  this.timeout(120_000);
  let listener: TestListener;
  let a1: Device;
  let a2: Device;
  let b1: Device;
  before(async () => {
    listener = await startListener();
    const call = client(listener.url);
    [a1, a2] = (await person(call, 2)) as [Device, Device];
    [b1] = (await person(call, 1)) as [Device];
    const sent = await call('POST', '/api/messages', {
      token: b1.token,
      body: {
        to: a1.username,
        client_message_id: 'seed',
        envelopes: envelopesFor(b1, [keyOf(a1), keyOf(a2)], 'seed'),
      },
    });
    expect(sent.status).to.equal(201);
  });
  after(async () => {
    agent.destroy();
    await listener.close();
  });

  it(`when ${RUNS} generated requests hit every route, then no 5xx, every error is JSON and nothing changes`, async () => {
    const userIds = [a1.userId, b1.userId];
    const before = await dbState(listener.deps.db, userIds);
    const vocabulary: Vocabulary = {
      ids: [a1.deviceId, a2.deviceId, b1.deviceId, a1.userId, b1.userId],
      names: [a1.username, b1.username, a1.username.toUpperCase()],
    };
    const tokens: Tokens = {
      valid: a1.token,
      invalid: [
        '',
        'Bearer',
        'Bearer ',
        `Bearer ${'A'.repeat(43)}`,
        `Bearer ${a1.token}x`,
        `bearer ${a1.token}`,
        `Basic ${Buffer.from('a:b').toString('base64')}`,
        `Bearer ${a1.token.slice(0, 42)}=`,
        `Bearer ${'x'.repeat(500)}`,
      ],
    };
    const predict = oracle(routes);
    const stats = {
      ms: 0,
      sent: 0,
      skipped: 0,
      byStatus: new Map<number, number>(),
      byRoute: new Map<string, number>(),
    };
    const arb = fc.oneof(...routes.map((r) => requestArb(r, vocabulary, tokens)));
    await fc.assert(
      fc.asyncProperty(arb, async (req) => {
        const { verdict, route } = predict(req);
        // A request that may be valid could change data: only reads are sent then.
        if (verdict === 'maybe' && !['GET', 'HEAD', 'OPTIONS'].includes(req.method)) {
          stats.skipped++;
          return;
        }
        const url = `${listener.url}${req.path}${req.query ? `?${req.query}` : ''}`;
        const t0 = performance.now();
        const { status: statusCode, text } = await send(listener.url, req);
        const res = { statusCode };
        stats.sent++;
        stats.ms += performance.now() - t0;
        stats.byStatus.set(res.statusCode, (stats.byStatus.get(res.statusCode) ?? 0) + 1);
        const key = route ? `${route.method.toUpperCase()} ${route.path}` : 'unrouted';
        stats.byRoute.set(key, (stats.byRoute.get(key) ?? 0) + 1);
        const what = `${req.method} ${url.slice(0, 200)} → ${res.statusCode} ${text.slice(0, 300)}`;
        expect(res.statusCode, what).to.be.below(500);
        if (verdict === 'rejected') expect(res.statusCode, what).to.be.at.least(400);
        if (res.statusCode >= 400 && req.method !== 'HEAD') {
          let body: Record<string, unknown> = {};
          try {
            body = JSON.parse(text) as Record<string, unknown>;
          } catch {
            expect.fail(`not JSON: ${what}`);
          }
          expect(body.error, what)
            .to.be.a('string')
            .and.match(/^[a-z_]+$/);
          expect(body.message, what).to.be.a('string');
        }
      }),
      {
        numRuns: RUNS,
        endOnFailure: true,
        ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}),
      },
    );
    const after = await dbState(listener.deps.db, userIds);
    expect(after).to.deep.equal(before);
    const me = await client(listener.url)('GET', '/api/users/me', { token: a1.token });
    expect(me.status, 'the fuzzed session survived').to.equal(200);
    const statuses = [...stats.byStatus].sort(([x], [y]) => x - y).map(([s, n]) => `${s}×${n}`);
    console.log(
      `      fuzz: ${stats.sent} sent, ${stats.skipped} skipped as possibly valid; ${statuses.join(' ')}`,
    );
    console.log(
      `      fuzz: ${stats.byRoute.size} routes hit: ${[...stats.byRoute].map(([r, n]) => `${r}×${n}`).join(', ')}`,
    );
    expect(stats.sent).to.be.at.least(MIN_SENT);
    expect([...stats.byStatus.keys()].filter((s) => s >= 500)).to.deep.equal([]);
  });
});
