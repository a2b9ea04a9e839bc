import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import { expect } from 'chai';
import { Agent } from 'undici';
import { Messenger } from '../../common/client/index.ts';
import { loadConfig } from '../../common/config.ts';
import { ensureSigningKey } from '../../common/crypto/signing-key.ts';
import { deleteTopology } from '../../common/queue/topology.ts';
import { ROOT } from '../../scripts/stack/index.ts';
import { alive, freePort, freePortRange } from '../../scripts/stack/processes.ts';
import { buildOnce } from '../helpers/build.ts';
import { testEnv } from '../helpers/env.ts';
import { client } from '../helpers/http.ts';
import { decrypt, envelopesFor, keyOf, login, person, register } from '../helpers/people.ts';
import { isolatedDatabase } from '../helpers/sender.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A shell command line run as a user would type it (bash, in the checkout). */
function sh(line: string, env: NodeJS.ProcessEnv, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile('bash', ['-c', line], { cwd: ROOT, env }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input ?? '');
  });
}

/** The first fenced block of `lang` under the README heading that starts with `heading`. */
function readmeBlock(heading: string, lang: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n## ${heading}`);
  if (at < 0) throw new Error(`README has no section ${heading}`);
  const block = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(readme.slice(at))?.[1];
  if (!block) throw new Error(`README section ${heading} has no ${lang} block`);
  return block;
}

/** A block's commands: comments and `export`s apart, trailing `# …` comments cut. */
function commandsOf(block: string) {
  const env: Record<string, string> = {};
  const commands: string[] = [];
  for (const raw of block.split('\n')) {
    const line = raw.replace(/\s+#\s.*$/, '').trim();
    if (!line || line.startsWith('#')) continue;
    const exported = /^export (\w+)=(\S+)$/.exec(line);
    if (exported?.[1] && exported[2]) env[exported[1]] = exported[2];
    else commands.push(line);
  }
  return { env, commands };
}

/** PIDs whose command line mentions `needle`. */
function processesWith(needle: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/**
 * A PATH of one directory that links every program of this one except `without` (and never the
 * real apt-get: a test must not install anything), plus `extra` scripts of its own.
 */
async function pathWithout(without: string[], extra: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'messenger-path-'));
  const skip = new Set([...without, 'apt-get', ...Object.keys(extra)]);
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (!existsSync(d)) continue;
    for (const name of readdirSync(d)) {
      if (skip.has(name) || existsSync(join(dir, name))) continue;
      await symlink(join(d, name), join(dir, name)).catch(() => {});
    }
  }
  for (const [name, script] of Object.entries(extra)) {
    await writeFile(join(dir, name), script);
    await chmod(join(dir, name), 0o755);
  }
  return dir;
}

describe('npm run stack on a fresh machine (nginx missing)', function () {
  this.timeout(120_000);
  const dirs: string[] = [];
  before(() => buildOnce());
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('when nginx is not on PATH and installing is off, then the stack stops with one line naming the package and the command', async () => {
    const bin = await pathWithout(['nginx']);
    const runDir = await mkdtemp(join(tmpdir(), 'messenger-stack-fresh-'));
    dirs.push(bin, runDir);
    const r = await sh(
      'npm run stack',
      testEnv({ PATH: bin, STACK_INSTALL: 'never', STACK_RUN_DIR: runDir }),
    );
    expect(r.code).to.not.equal(0);
    const ours = r.stderr.split('\n').filter((l) => l.startsWith('[stack]'));
    expect(ours).to.deep.equal([
      '[stack] failed: nginx not installed: run `sudo apt-get update && sudo apt-get install -y nginx`, then npm run stack again',
    ]);
    expect(existsSync(join(runDir, 'pids')), 'nothing was started').to.equal(false);
  });

  it('when run as root with installing on, then it runs apt-get update and install for the missing package, as .ci/run does', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const calls = join(await mkdtemp(join(tmpdir(), 'messenger-apt-')), 'calls');
    // A stand-in apt-get that only records how it was called: nothing is installed.
    const bin = await pathWithout(['nginx'], { 'apt-get': `#!/bin/sh\necho "$*" >> ${calls}\n` });
    const runDir = await mkdtemp(join(tmpdir(), 'messenger-stack-fresh-'));
    dirs.push(bin, runDir);
    const r = await sh('npm run stack', testEnv({ PATH: bin, STACK_RUN_DIR: runDir }));
    expect(r.code).to.not.equal(0);
    expect(readFileSync(calls, 'utf8')).to.equal('update -qq\ninstall -y -qq nginx\n');
    expect(r.stdout).to.include('[stack] installing nginx (apt-get; STACK_INSTALL=never to only be told)');
    // The stand-in installed nothing, so the stack still says what is missing.
    expect(r.stderr).to.match(/^\[stack\] failed: after apt-get install: nginx not installed: /m);
  });
});

describe('README walk-throughs against `npm run stack` (stack, CLI, SDK), run as printed', function () {
  this.timeout(240_000);
  let runDir: string;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let url: string;
  let db: Awaited<ReturnType<typeof isolatedDatabase>>;
  const children = new Set<ChildProcess>();
  const stackBlock = () => commandsOf(readmeBlock('Start the whole stack', 'sh')).commands;

  before(async () => {
    await buildOnce();
    db = await isolatedDatabase();
    runDir = await mkdtemp(join(tmpdir(), 'messenger-stack-cli-'));
    home = await mkdtemp(join(tmpdir(), 'messenger-home-'));
    env = testEnv({
      DATABASE_URL: db.url,
      STACK_RUN_DIR: runDir,
      // Reuse the machine's PostgreSQL/RabbitMQ and never stop them: other suites share them.
      STACK_SERVICES: 'external',
      STACK_INSTALL: 'never',
      HTTPS_PORT: String(await freePort()),
      LISTENERS: '2',
      SENDERS: '1',
      LISTENER_BASE_PORT: String(await freePortRange(2)),
      METRICS_BASE_PORT: String(await freePortRange(3)),
      SENDER_ALLOW_PRIVATE_ADDRESSES: 'true',
      AMQP_PREFIX: `test.cli.${randomBytes(4).toString('hex')}`,
      LOG_LEVEL: 'info',
      HOME: home,
    });
    await ensureSigningKey(loadConfig(env).SIGNING_KEY_FILE).catch((err) => {
      if (err.code !== 'EEXIST') throw err;
    });
    // The README's `npm ci && npm run stack`: the test's checkout is installed already, and npm ci
    // in a shared working tree would pull node_modules from under other runs.
    const [start = ''] = stackBlock();
    expect(start).to.equal('npm ci && npm run stack');
    const started = await sh(start.replace(/^npm ci && /, ''), env);
    url = /messenger is up: (https:\/\/[\d.:]+)\/api/.exec(started.stdout)?.[1] ?? '';
    expect(url, started.stdout + started.stderr).to.match(/^https:/);
    env.MESSENGER_URL = url;
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (existsSync(join(runDir, 'pids'))) await sh('npm run stack:stop', env).catch(() => {});
    const config = loadConfig(env);
    const conn = await amqp.connect(config.AMQP_URL);
    try {
      await deleteTopology(await conn.createChannel(), config);
    } finally {
      await conn.close();
    }
    await db?.drop();
    for (const d of [runDir, home]) if (d) await rm(d, { recursive: true, force: true });
  });

  it('when the stack is up, then its listeners and senders run the compiled JavaScript with no TypeScript loader', async () => {
    const pidFiles = (await readdir(join(runDir, 'pids'))).sort();
    expect(pidFiles).to.deep.equal(['listener-0.pid', 'listener-1.pid', 'nginx.pid', 'sender-0.pid']);
    for (const f of pidFiles.filter((n) => !n.startsWith('nginx'))) {
      const pid = Number((await readFile(join(runDir, 'pids', f), 'utf8')).split('\n')[0]);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const role = f.replace(/-\d+\.pid$/, '');
      expect(cmdline.slice(1), f).to.deep.equal([`dist/${role}/main.js`]);
    }
  });

  it('when a message is sent through nginx, then it is pushed to a local address', async () => {
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
    const dispatcher = new Agent({ connect: { ca: readFileSync(join(ROOT, 'cert/certificate.pem')) } });
    try {
      const call = client(url, dispatcher);
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
      expect(decrypt(bob, JSON.parse(pushes[0] ?? '{}'))).to.equal('through the whole stack');
    } finally {
      sink.close();
      await dispatcher.close();
    }
  });

  it('when the worked example is run as printed, then the signed push arrives and decrypts', async () => {
    const block = readmeBlock('Worked example', 'sh');
    const [line = ''] = commandsOf(block).commands;
    expect(line).to.equal('npx tsx scripts/example-send.ts demo https://127.0.0.1:8443');
    const r = await sh(line.replace('https://127.0.0.1:8443', url), env);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/signature valid\) decrypts to: "hello bob, only you can read this"/);
  });

  it('when the curl walk-through is run as printed (this stack\'s URL, fresh user names), then bob reads "hi bob"', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const from = readme.indexOf('The same by hand with `curl`');
    const script = /```sh\n([\s\S]*?)```/.exec(readme.slice(from))?.[1] ?? '';
    expect(script).to.contain('c -X POST $API/messages');
    // alice and bob are taken by the CLI walk-through of this stack: the same script, other names.
    const n = randomBytes(3).toString('hex');
    const ours = script
      .replace('API=https://127.0.0.1:8443/api', `API=${url}/api`)
      .replace(/\balice\b/g, `alice_${n}`)
      .replace(/(?<!hi )\bbob\b(?! secret)/g, `bob_${n}`);
    const r = await sh(`set -euo pipefail\n${ours}`, env);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    // curl prints the JSON answers without newlines; the decrypted text is the last line (the ack is a 204).
    expect(r.stdout.trimEnd(), r.stderr).to.match(/hi bob$/);
  });

  it("when the CLI walk-through is typed as printed (passwords on stdin), then terminal 1 prints alice's message", async () => {
    const { env: exported, commands } = commandsOf(readmeBlock('Command-line client', 'sh'));
    expect(exported).to.deep.equal({ MESSENGER_CA: 'cert/certificate.pem' });
    const cliEnv = { ...env, ...exported };
    const password = (cmd: string) => `${/ register (\w+)/.exec(cmd)?.[1] ?? 'x'} secret 12\n`;
    let terminal1: ChildProcess | undefined;
    let printed = '';
    for (const cmd of commands) {
      if (/ listen /.test(cmd)) {
        terminal1 = spawn('bash', ['-c', cmd], { cwd: ROOT, env: cliEnv, stdio: ['ignore', 'pipe', 'pipe'] });
        children.add(terminal1);
        terminal1.stdout?.on('data', (c: Buffer) => {
          printed += c.toString();
        });
        let note = '';
        terminal1.stderr?.on('data', (c: Buffer) => {
          note += c.toString();
        });
        for (let i = 0; i < 400 && !note.includes('listening as'); i++) await sleep(50);
        expect(note).to.include('listening as bob');
        continue;
      }
      const r = await sh(cmd, cliEnv, password(cmd));
      expect(r.code, `${cmd}\n${r.stderr}`).to.equal(0);
    }
    for (let i = 0; i < 200 && !printed.includes('hello bob'); i++) await sleep(50);
    // Below npm's own banner (`> messenger@0.1.0 cli`), the one event line.
    const events = printed.split('\n').filter((l) => l && !l.startsWith('>'));
    expect(events).to.have.length(1);
    expect(events[0]).to.match(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\] alice: hello bob$/);
    expect(readmeBlock('Command-line client', 'sh')).to.include(
      '# terminal 1 prints: [2026-11-25 16:20:01Z] alice: hello bob',
    );
    // Ctrl-C in terminal 1 — or stopping npm by its PID — ends the client with nothing left over.
    if (!terminal1?.pid) throw new Error('no terminal 1');
    const profile = join(home, '.messenger/bob.json');
    terminal1.kill('SIGTERM');
    await once(terminal1, 'exit');
    for (let i = 0; i < 100 && processesWith(profile).length; i++) await sleep(50);
    expect(processesWith(profile)).to.deep.equal([]);
  });

  it('when the SDK snippet is saved in a fresh .ts file and run twice, then it prints the message and keeps one device per user', async () => {
    const file = join(ROOT, 'run', `readme-sdk-${randomBytes(4).toString('hex')}.ts`);
    await mkdir(join(ROOT, 'run'), { recursive: true });
    await writeFile(file, readmeBlock('Client SDK', 'ts'));
    try {
      for (const run of [1, 2]) {
        const r = await sh(`npx tsx ${file}`, env);
        expect(r.code, `run ${run}: ${r.stderr}`).to.equal(0);
        expect(r.stdout, `run ${run}`).to.equal('carol: hello dave\n');
      }
      const ca = readFileSync(join(ROOT, 'cert/certificate.pem'));
      const carol = new Messenger({ baseUrl: url, ca, profile: join(home, '.messenger/carol.json') });
      expect(await carol.devices()).to.have.length(1);
    } finally {
      await rm(file, { force: true });
    }
  });

  it('when the stack is stopped as printed, then nothing it started is left running', async () => {
    const pids = await Promise.all(
      (await readdir(join(runDir, 'pids'))).map(async (f) =>
        Number((await readFile(join(runDir, 'pids', f), 'utf8')).split('\n')[0]),
      ),
    );
    const stop = stackBlock()[1] ?? '';
    expect(stop).to.equal('npm run stack:stop');
    const stopped = await sh(stop, env);
    expect(stopped.stdout).to.match(/stopped 4 process\(es\)/);
    for (const pid of pids) expect(alive(pid), `pid ${pid}`).to.equal(false);
    expect(await readdir(join(runDir, 'pids'))).to.deep.equal([]);
  });
});
