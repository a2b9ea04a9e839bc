import { expect } from 'chai';
import { uniqueName } from '../helpers/people.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';

/**
 * nginx matches locations case-sensitively, so its stricter login zone covers `/api/login` only.
 * The listener's router must therefore be as strict: any other spelling is 404 before a password
 * is looked at, or the zone is sidestepped with `/api/Login` (issue 16, item 1).
 */
describe('edge: paths are case-sensitive on every route', function () {
  this.timeout(90_000);
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ listeners: 1, limits: { authPerMinute: 1, authBurst: 2 } });
  });
  after(() => stack?.stop());

  it('when one IP repeats POST /api/Login, then no attempt reaches a password check: 404, then the same 429 as /api/login', async () => {
    const call = stack.callFrom('127.0.0.21');
    const body = () => ({
      username: uniqueName('nobody'),
      password: 'wrong password',
      public_key: Buffer.alloc(32).toString('base64'),
    });
    const statuses: number[] = [];
    for (const path of ['/api/Login', '/api/LOGIN', '/api/login/', '/API/login', '/api/Users']) {
      const res = await call('POST', path, { body: body() });
      statuses.push(res.status);
      if (res.status === 404) expect(res.body.error, path).to.equal('not_found');
    }
    // Only `/api/login/` is the real route (trailing slash allowed): 401; every other spelling 404.
    expect(statuses).to.deep.equal([404, 404, 401, 404, 404]);
    const real: number[] = [];
    for (let i = 0; i < 4; i++) real.push((await call('POST', '/api/login', { body: body() })).status);
    expect(
      real.filter((s) => s === 429).length,
      'the login zone still limits the real path',
    ).to.be.greaterThan(0);
  });

  it('when any route is spelled in another case, then it is 404 not_found (reads too)', async () => {
    for (const path of ['/api/Health', '/api/HEALTH', '/api/Ready', '/api/Devices', '/api/Messages']) {
      const res = await stack.call('GET', path);
      expect(res.status, path).to.equal(404);
      expect(res.body.error, path).to.equal('not_found');
    }
    expect((await stack.call('GET', '/api/health')).status).to.equal(200);
  });
});
