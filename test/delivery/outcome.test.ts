import { expect } from 'chai';
import { retryTiers, tierFor } from '../../common/queue/topology.ts';
import { classify } from '../../sender/deliver.ts';
import {
  type Answer,
  deferral,
  type Outcome,
  outcome,
  parseRetryAfter,
  type RetryPolicy,
} from '../../sender/outcome.ts';
import { BlockedAddressError, isPublicAddress, pushUrl } from '../../sender/ssrf.ts';

const policy: RetryPolicy = { baseMs: 1_000, maxMs: 3_600_000, windowMs: 86_400_000, jitter: true };
const now = Date.parse('2026-01-01T00:00:00Z');
const res = (status: number, retryAfter?: string): Answer => ({ kind: 'response', status, retryAfter });
const err = (errorClass: Extract<Answer, { kind: 'error' }>['errorClass']): Answer => ({
  kind: 'error',
  errorClass,
});

describe('sender outcome (pure decision table)', () => {
  // [answer, attempt number, elapsed ms since queued, random(), expected]
  const table: [string, Answer, number, number, number, Outcome][] = [
    ['200', res(200), 1, 0, 0.5, { kind: 'delivered' }],
    ['204', res(204), 3, 5_000, 0.5, { kind: 'delivered' }],
    ['299', res(299), 1, 0, 0.5, { kind: 'delivered' }],
    ['410 gone', res(410), 1, 0, 0.5, { kind: 'gone' }],
    ['410 gone even late', res(410), 40, 86_000_000, 0.5, { kind: 'gone' }],
    ['500 first attempt waits base', res(500), 1, 0, 0.9, { kind: 'retry', afterMs: 1_000 }],
    ['500 attempt 2, random 0 → base', res(500), 2, 0, 0, { kind: 'retry', afterMs: 1_000 }],
    ['500 attempt 2, random 1 → 2 s', res(500), 2, 0, 1, { kind: 'retry', afterMs: 2_000 }],
    ['500 attempt 5, random 0.5 → 1 s + 7.5 s', res(500), 5, 0, 0.5, { kind: 'retry', afterMs: 8_500 }],
    ['500 attempt 30 is capped at max', res(500), 30, 0, 1, { kind: 'retry', afterMs: 3_600_000 }],
    ['301 is not followed: retried', res(301), 1, 0, 0, { kind: 'retry', afterMs: 1_000 }],
    ['302 is not followed: retried', res(302), 1, 0, 0, { kind: 'retry', afterMs: 1_000 }],
    ['400 retried', res(400), 1, 0, 0, { kind: 'retry', afterMs: 1_000 }],
    ['404 retried', res(404), 1, 0, 0, { kind: 'retry', afterMs: 1_000 }],
    ['100-level oddity retried', res(101), 1, 0, 0, { kind: 'retry', afterMs: 1_000 }],
    ['429 Retry-After seconds', res(429, '120'), 1, 0, 0, { kind: 'retry', afterMs: 120_000 }],
    ['503 Retry-After seconds', res(503, '7'), 4, 0, 1, { kind: 'retry', afterMs: 7_000 }],
    ['503 Retry-After 0', res(503, '0'), 1, 0, 1, { kind: 'retry', afterMs: 0 }],
    [
      '429 Retry-After HTTP date',
      res(429, 'Thu, 01 Jan 2026 00:01:00 GMT'),
      1,
      0,
      0,
      { kind: 'retry', afterMs: 60_000 },
    ],
    [
      '503 Retry-After date in the past',
      res(503, 'Wed, 31 Dec 2025 00:00:00 GMT'),
      1,
      0,
      0,
      { kind: 'retry', afterMs: 0 },
    ],
    ['429 Retry-After garbage → backoff', res(429, 'soon'), 2, 0, 1, { kind: 'retry', afterMs: 2_000 }],
    ['429 Retry-After negative → backoff', res(429, '-5'), 1, 0, 1, { kind: 'retry', afterMs: 1_000 }],
    ['500 ignores Retry-After', res(500, '120'), 1, 0, 0, { kind: 'retry', afterMs: 1_000 }],
    [
      '503 Retry-After beyond the window',
      res(503, '7200'),
      3,
      82_800_001,
      0,
      { kind: 'dead', reason: 'retry_window_exhausted' },
    ],
    ['timeout', err('timeout'), 1, 0, 0, { kind: 'retry', afterMs: 1_000 }],
    ['connect timeout', err('connect_timeout'), 2, 0, 1, { kind: 'retry', afterMs: 2_000 }],
    ['connection refused', err('connection'), 1, 0, 0, { kind: 'retry', afterMs: 1_000 }],
    ['dns failure', err('dns'), 1, 0, 0, { kind: 'retry', afterMs: 1_000 }],
    ['tls failure', err('tls'), 1, 0, 0, { kind: 'retry', afterMs: 1_000 }],
    [
      'blocked address: dead at once',
      err('blocked_address'),
      1,
      0,
      0,
      { kind: 'dead', reason: 'blocked_address' },
    ],
    ['retry still inside the window', res(500), 10, 86_399_000, 0, { kind: 'retry', afterMs: 1_000 }],
    [
      'retry past the window: dead',
      res(500),
      10,
      86_399_001,
      0,
      { kind: 'dead', reason: 'retry_window_exhausted' },
    ],
  ];
  for (const [name, answer, n, elapsedMs, random, expected] of table) {
    it(`when the answer is ${name} (attempt ${n}), then ${expected.kind}`, () => {
      expect(outcome(answer, { number: n, elapsedMs, now }, policy, () => random)).to.deep.equal(expected);
    });
  }

  it('when jitter is off, then delays double from base up to max', () => {
    const fixed = { ...policy, baseMs: 100, maxMs: 400, jitter: false };
    const delays = [1, 2, 3, 4, 5].map((n) => outcome(res(500), { number: n, elapsedMs: 0, now }, fixed));
    expect(delays.map((o) => (o.kind === 'retry' ? o.afterMs : -1))).to.deep.equal([100, 200, 400, 400, 400]);
  });

  it('when Retry-After is parsed, then seconds and HTTP dates work and anything else is unusable', () => {
    expect(parseRetryAfter('5', now)).to.equal(5_000);
    expect(parseRetryAfter(' 5 ', now)).to.equal(5_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).to.equal(30_000);
    for (const bad of [undefined, '', '1.5', '-1', 'tomorrow', '12abc']) {
      expect(parseRetryAfter(bad, now), String(bad)).to.equal(undefined);
    }
  });
});

describe('sender deferral (origin busy, no attempt)', () => {
  // [deferrals so far + 1, elapsed ms since queued, random(), expected]
  const table: [string, number, number, number, Outcome][] = [
    ['first deferral waits base', 1, 0, 0.9, { kind: 'retry', afterMs: 1_000 }],
    ['fifth deferral backs off like a fifth attempt', 5, 0, 0.5, { kind: 'retry', afterMs: 8_500 }],
    ['many deferrals are capped at max', 40, 0, 1, { kind: 'retry', afterMs: 3_600_000 }],
    [
      'deferrals count toward the window',
      3,
      86_399_000,
      1,
      { kind: 'dead', reason: 'retry_window_exhausted' },
    ],
  ];
  for (const [name, n, elapsedMs, r, expected] of table) {
    it(`when ${name}, then ${expected.kind}`, () => {
      expect(deferral(n, elapsedMs, policy, () => r)).to.deep.equal(expected);
    });
  }
});

describe('retry tiers', () => {
  it('when tiers are derived, then they grow by 4 from base and end at max', () => {
    expect(retryTiers(1_000, 3_600_000)).to.deep.equal([
      1_000, 4_000, 16_000, 64_000, 256_000, 1_024_000, 3_600_000,
    ]);
    expect(retryTiers(100, 400)).to.deep.equal([100, 400]);
    expect(retryTiers(500, 500)).to.deep.equal([500]);
  });

  it('when a delay is placed, then it takes the largest tier not longer than it, or the shortest', () => {
    const tiers = [100, 400, 1_600];
    expect([0, 99, 100, 399, 400, 1_599, 1_600, 99_999].map((ms) => tierFor(tiers, ms))).to.deep.equal([
      100, 100, 100, 100, 400, 400, 1_600, 1_600,
    ]);
  });
});

describe('SSRF guard', () => {
  const refused = [
    '127.0.0.1',
    '127.255.255.254',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '255.255.255.255',
    '224.0.0.1',
    '240.0.0.1',
    '192.0.2.1',
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '::ffff:169.254.169.254',
    '64:ff9b::7f00:1',
    '2002:7f00:1::1',
    'not an ip',
  ];
  const allowed = ['8.8.8.8', '1.1.1.1', '93.184.216.34', '2001:4860:4860::8888', '::ffff:8.8.8.8'];
  for (const ip of refused) {
    it(`when the address is ${ip}, then it is refused`, () => expect(isPublicAddress(ip)).to.equal(false));
  }
  for (const ip of allowed) {
    it(`when the address is ${ip}, then it is allowed`, () => expect(isPublicAddress(ip)).to.equal(true));
  }

  it('when a push address is not http(s), then it is refused before any connection', () => {
    for (const bad of [
      'ftp://example.com/',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'gopher://x',
      'nonsense',
    ]) {
      expect(() => pushUrl(bad), bad).to.throw(BlockedAddressError);
    }
    expect(pushUrl('https://example.com/p?q=1').href).to.equal('https://example.com/p?q=1');
  });

  it('when an IP literal is spelled in decimal, octal or hex, then URL parsing normalises it for the check', () => {
    for (const spelling of ['http://2130706433/', 'http://0177.0.0.1/', 'http://0x7f.1/', 'http://127.1/']) {
      const host = pushUrl(spelling).hostname;
      expect(host, spelling).to.equal('127.0.0.1');
      expect(isPublicAddress(host)).to.equal(false);
    }
  });

  it('when errors are classified, then wrapped causes and undici codes map to their class', () => {
    expect(classify(new BlockedAddressError('x'))).to.equal('blocked_address');
    expect(classify(Object.assign(new Error('x'), { cause: new BlockedAddressError('y') }))).to.equal(
      'blocked_address',
    );
    expect(classify(Object.assign(new Error('x'), { code: 'UND_ERR_CONNECT_TIMEOUT' }))).to.equal(
      'connect_timeout',
    );
    expect(classify(Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' }))).to.equal('timeout');
    expect(classify(new DOMException('t', 'TimeoutError'))).to.equal('timeout');
    expect(classify(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).to.equal('connection');
    expect(classify(Object.assign(new Error('x'), { code: 'ENOTFOUND' }))).to.equal('dns');
    expect(classify(Object.assign(new Error('x'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }))).to.equal('tls');
    expect(classify(new Error('weird'))).to.equal('other');
  });
});
