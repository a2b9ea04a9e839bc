import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { dropDatabase, ensureDatabase, migrate, withDatabase } from '../../common/db/admin.ts';
import { buildOnce } from '../helpers/build.ts';
import { testConfig } from '../helpers/env.ts';

const run = promisify(execFile);

describe('migrations from the built dist/', function () {
  this.timeout(120_000);

  it('when dist/ migrates an empty database, then it applies every migration under its .ts name, and the sources find nothing left', async () => {
    await buildOnce();
    const base = testConfig().DATABASE_URL;
    const url = withDatabase(base, `${new URL(base).pathname.slice(1)}_${randomBytes(4).toString('hex')}`);
    await ensureDatabase(url);
    try {
      const admin = new URL('../../dist/common/db/admin.js', import.meta.url).href;
      const { stdout } = await run(process.execPath, [
        '--input-type=module',
        '-e',
        `const { migrate } = await import(${JSON.stringify(admin)}); console.log(JSON.stringify(await migrate(${JSON.stringify(url)})));`,
      ]);
      const sources = (await readdir(new URL('../../common/db/migrations/', import.meta.url))).sort();
      expect(JSON.parse(stdout)).to.deep.equal(sources);
      expect(await migrate(url)).to.deep.equal([]);
    } finally {
      await dropDatabase(url);
    }
  });
});
