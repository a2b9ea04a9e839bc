import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import nacl from 'tweetnacl';
import { request } from 'undici';
import { signPush } from '../../common/client/index.ts';
import { uniqueName } from '../helpers/people.ts';
import { type DeliveryStack, startDeliveryStack } from '../helpers/sender.ts';
import { PASSWORD } from './helpers.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('CLI as a subprocess', function () {
  // Each command is a fresh Node process compiling TypeScript: generous bounds on a busy machine.
  this.timeout(120_000);
  let stack: DeliveryStack;
  let dir: string;
  const cliArgs = (profile: string, args: string[]) => [
    '--import',
    'tsx',
    'scripts/cli.ts',
    ...args,
    '--url',
    stack.listener.url,
    '--profile',
    join(dir, `${profile}.json`),
  ];
  const cli = (profile: string, ...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(process.execPath, cliArgs(profile, args), { cwd: ROOT }, (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      );
    });
  /** A long-running command; resolves once its stdout has a first line. */
  const background = async (profile: string, ...args: string[]) => {
    const child: ChildProcess = spawn(process.execPath, cliArgs(profile, args), { cwd: ROOT });
    children.add(child);
    let stdout = '';
    child.stdout?.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = once(child, 'exit');
    return {
      child,
      output: () => stdout,
      errors: () => stderr,
      async lines(n: number) {
        for (let i = 0; i < 1200 && stdout.split('\n').filter(Boolean).length < n; i++) {
          if (child.exitCode !== null) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        return stdout.split('\n').filter(Boolean);
      },
      exited,
    };
  };

  /** Long-running commands; whatever a failed test left running is killed in after(). */
  const children = new Set<ChildProcess>();
  let alice: string;
  let bob: string;
  before(async function () {
    this.timeout(60_000);
    stack = await startDeliveryStack();
    await stack.startSender();
    dir = await mkdtemp(join(tmpdir(), 'messenger-cli-'));
    [alice, bob] = [uniqueName(), uniqueName()];
    for (const [who, name] of [
      ['alice', alice],
      ['bob', bob],
    ] as const) {
      const r = await cli(who, 'register', name, '--password', PASSWORD, '--json');
      expect(r.code, r.stderr).to.equal(0);
      expect(JSON.parse(r.stdout.trim()).username).to.equal(name);
    }
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await stack?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('when registering, then the profile with the keys is written readable by its owner only', async () => {
    const mode = (await stat(join(dir, 'alice.json'))).mode & 0o777;
    expect(mode.toString(8)).to.equal('600');
    const who = await cli('alice', 'whoami', '--json');
    expect(JSON.parse(who.stdout).username).to.equal(alice);
  });

  it('when alice sends, then bob’s inbox prints the plaintext once and acknowledges it', async () => {
    const sent = await cli('alice', 'send', bob, 'hello', 'bob');
    expect(sent.code, sent.stderr).to.equal(0);
    expect(sent.stdout).to.match(new RegExp(`^sent [0-9a-f-]{36} to ${bob}\\n$`));
    const inbox = await cli('bob', 'inbox');
    expect(inbox.code, inbox.stderr).to.equal(0);
    expect(inbox.stdout).to.match(new RegExp(`\\] ${alice}: hello bob\\n$`));
    expect((await cli('bob', 'inbox')).stdout).to.equal('no new messages\n');
  });

  it('when the inbox is read with --json, then each event is one JSON line with the decrypted text', async () => {
    await cli('alice', 'send', bob, 'one');
    await cli('alice', 'send', bob, 'two');
    const inbox = await cli('bob', 'inbox', '--json', '--limit', '1');
    const events = inbox.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.map((e) => [e.from, e.text, e.type])).to.deep.equal([
      [alice, 'one', 'message'],
      [alice, 'two', 'message'],
    ]);
  });

  it('when bob runs a sink with --set-address, then a push arrives, is verified and printed decrypted', async () => {
    const sink = await background('bob', 'sink', '--port', '0', '--set-address', '--count', '1', '--json');
    const [ready] = await sink.lines(1);
    const { sink: url, address_set } = JSON.parse(ready ?? '{}');
    expect(address_set).to.equal(true);
    // A push signed with someone else's key is refused and never printed as a message.
    const id = randomUUID();
    const ts = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ id, type: 'message', text: 'forged' });
    const forged = await request(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(ts),
        'webhook-signature': signPush(id, ts, body, nacl.sign.keyPair().secretKey),
      },
      body,
    });
    await forged.body.dump();
    expect(forged.statusCode).to.equal(401);
    const sent = await cli('alice', 'send', bob, 'pushed', 'to', 'the', 'sink');
    expect(sent.code, sent.stderr).to.equal(0);
    const [code] = await sink.exited;
    expect(code).to.equal(0);
    const pushed = JSON.parse(sink.output().trim().split('\n')[1] ?? '{}');
    expect(pushed).to.include({ from: alice, text: 'pushed to the sink', decrypted: true });
    expect(sink.output()).to.not.include('forged');
    expect(sink.errors()).to.include('rejected push: no valid signature');
    // The sink cleared the address on exit: the next message waits in the inbox instead.
    await cli('alice', 'send', bob, 'after the sink');
    expect((await cli('bob', 'inbox')).stdout).to.include('after the sink');
  });

  it('when bob listens, then a message alice sends is printed live and Ctrl-C ends it cleanly', async () => {
    const listen = await background('bob', 'listen', '--json');
    // The stream has no "ready" line; send until the first one shows (a bound, not a timing assertion).
    const live = () =>
      listen
        .output()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((e) => /^live \d+$/.test(e.text ?? ''));
    for (let i = 0; i < 10 && !live().length; i++) {
      await cli('alice', 'send', bob, `live ${i}`);
      await listen.lines(1);
    }
    expect(live()[0]).to.include({ from: alice, type: 'message' });
    const presence = await cli('alice', 'presence', bob, 'nobody_online_here');
    expect(presence.stdout).to.equal(`online: ${bob}\n`);
    listen.child.kill('SIGINT');
    const [code] = await listen.exited;
    expect(code).to.equal(0);
  });

  it('when something fails, then one line on stderr and a non-zero exit code', async () => {
    const unknown = await cli('alice', 'send', 'nobody_at_all_here', 'hi');
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.match(/^error: .*\(404 not_found\)\n$/);
    const usage = await cli('alice', 'send');
    expect(usage.code).to.equal(2);
    expect(usage.stderr.trim().split('\n')).to.have.length(1);
    const wrong = await cli('carol', 'login', alice, '--password', 'not the password');
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr).to.match(/invalid_credentials/);
  });

  it('when listing devices and logging out, then the device shows and the profile keeps it for the next login', async () => {
    const devices = await cli('alice', 'devices', '--json');
    const list = JSON.parse(devices.stdout).devices as { current: boolean; device_id: string }[];
    expect(list.filter((d) => d.current)).to.have.length(1);
    const out = await cli('alice', 'logout');
    expect(out.code, out.stderr).to.equal(0);
    expect((await cli('alice', 'whoami')).code).to.equal(2);
    const back = await cli('alice', 'login', alice, '--password', PASSWORD, '--json');
    expect(JSON.parse(back.stdout).device_id).to.equal(list.find((d) => d.current)?.device_id);
  });
});
