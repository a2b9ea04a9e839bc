import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { uniqueName } from '../helpers/people.ts';
import { isolatedDatabase } from '../helpers/sender.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';
import { PASSWORD } from './helpers.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

describe('CLI over HTTPS through nginx (self-signed certificate)', function () {
  // Three fresh CLI processes (tsx) and a stack start: generous bounds on a busy machine.
  this.timeout(120_000);
  let stack: TestStack;
  let dir: string;
  let db: Awaited<ReturnType<typeof isolatedDatabase>>;
  const cli = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const argv = ['--import', 'tsx', 'scripts/cli.ts', ...args, '--url', stack.url];
      execFile(
        process.execPath,
        [...argv, '--profile', join(dir, 'p.json')],
        { cwd: ROOT },
        (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      );
    });

  before(async () => {
    db = await isolatedDatabase();
    stack = await startTestStack({
      listeners: 1,
      senders: 0,
      envOverrides: { DATABASE_URL: db.url, AMQP_PREFIX: `test.cli.${randomBytes(4).toString('hex')}` },
    });
    dir = await mkdtemp(join(tmpdir(), 'messenger-cli-tls-'));
  });
  after(async () => {
    await stack?.stop();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('when the certificate is not trusted, then the CLI refuses unless --ca or --insecure is given', async () => {
    const name = uniqueName();
    const refused = await cli('register', name, '--password', PASSWORD);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.match(
      /^error: the server certificate is not trusted .*--ca <pem> or --insecure\n$/,
    );
    const trusted = await cli('register', name, '--password', PASSWORD, '--ca', stack.certFile);
    expect(trusted.code, trusted.stderr).to.equal(0);
    expect(trusted.stdout).to.include(`logged in as ${name}`);
    const insecure = await cli('send', name, 'note to self', '--insecure');
    expect(insecure.code, insecure.stderr).to.equal(0);
    expect(insecure.stdout).to.match(/^sent [0-9a-f-]{36} to /);
  });
});
