import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { expect } from 'chai';
import { Agent } from 'undici';
import { loadConfig } from '../../common/config.ts';
import { ensureSigningKey } from '../../common/crypto/signing-key.ts';
import { deleteTopology } from '../../common/queue/topology.ts';
import { ROOT } from '../../scripts/stack/index.ts';
import { alive, freePort, freePortRange } from '../../scripts/stack/processes.ts';
import { testEnv } from '../helpers/env.ts';
import { client } from '../helpers/http.ts';
import { decrypt, envelopesFor, keyOf, login, person, register } from '../helpers/people.ts';

const run = promisify(execFile);

describe('npm run stack / npm run stack:stop (the native one-command stack)', function () {
  this.timeout(180_000);
  let runDir: string;
  let env: NodeJS.ProcessEnv;
  const tsx = (script: string) => run(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, env });

  before(async () => {
    runDir = await mkdtemp(join(tmpdir(), 'messenger-stack-cli-'));
    env = testEnv({
      STACK_RUN_DIR: runDir,
      // Reuse the machine's PostgreSQL/RabbitMQ and never stop them: other suites share them.
      STACK_SERVICES: 'external',
      HTTPS_PORT: String(await freePort()),
      LISTENERS: '2',
      SENDERS: '1',
      LISTENER_BASE_PORT: String(await freePortRange(2)),
      METRICS_BASE_PORT: String(await freePortRange(3)),
      SENDER_ALLOW_PRIVATE_ADDRESSES: 'true',
      AMQP_PREFIX: `test.cli.${randomBytes(4).toString('hex')}`,
      TLS_CERT_FILE: join(runDir, 'tls', 'certificate.pem'),
      TLS_KEY_FILE: join(runDir, 'tls', 'private_key.pem'),
      LOG_LEVEL: 'info',
    });
    await ensureSigningKey(loadConfig(env).SIGNING_KEY_FILE).catch((err) => {
      if (err.code !== 'EEXIST') throw err;
    });
  });

  after(async () => {
    if (existsSync(join(runDir, 'pids'))) await tsx('scripts/stack-stop.ts').catch(() => {});
    const config = loadConfig(env);
    const conn = await amqp.connect(config.AMQP_URL);
    try {
      await deleteTopology(await conn.createChannel(), config);
    } finally {
      await conn.close();
    }
    await rm(runDir, { recursive: true, force: true });
  });

  it('when the stack is up, then a message sent through nginx is pushed to a local address, and stack:stop leaves nothing running', async () => {
    const started = await tsx('scripts/stack.ts');
    const url = /messenger is up: (https:\/\/[\d.:]+)\/api/.exec(started.stdout)?.[1];
    expect(url, started.stdout + started.stderr).to.be.a('string');
    const pidFiles = await readdir(join(runDir, 'pids'));
    expect(pidFiles.sort()).to.deep.equal(['listener-0.pid', 'listener-1.pid', 'nginx.pid', 'sender-0.pid']);
    const pids = await Promise.all(
      pidFiles.map(async (f) => Number((await readFile(join(runDir, 'pids', f), 'utf8')).split('\n')[0])),
    );
    for (const pid of pids) expect(alive(pid)).to.equal(true);

    const pushes: string[] = [];
    const sink = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        pushes.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    const dispatcher = new Agent({ connect: { ca: readFileSync(join(runDir, 'tls', 'certificate.pem')) } });
    try {
      const call = client(url as string, dispatcher);
      const [alice] = await person(call, 1);
      const bob = await login(call, await register(call), {
        user_address: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/push`,
      });
      if (!alice) throw new Error('setup');
      const sent = await call('POST', '/api/messages', {
        token: alice.token,
        body: { to: bob.username, envelopes: envelopesFor(alice, [keyOf(bob)], 'through the whole stack') },
      });
      expect(sent.status, JSON.stringify(sent.body)).to.equal(201);
      for (let i = 0; i < 300 && pushes.length === 0; i++) await sleep(100);
      expect(pushes).to.have.length.at.least(1);
      expect(decrypt(bob, JSON.parse(pushes[0] as string))).to.equal('through the whole stack');
    } finally {
      sink.close();
      await dispatcher.close();
    }

    const stopped = await tsx('scripts/stack-stop.ts');
    expect(stopped.stdout).to.match(/stopped 4 process\(es\)/);
    for (const pid of pids) expect(alive(pid), `pid ${pid}`).to.equal(false);
    expect(await readdir(join(runDir, 'pids'))).to.deep.equal([]);
  });
});
