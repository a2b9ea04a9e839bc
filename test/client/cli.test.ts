import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import nacl from 'tweetnacl';
import { request } from 'undici';
import { signPush } from '../../common/client/index.ts';
import { buildOnce } from '../helpers/build.ts';
import { uniqueName } from '../helpers/people.ts';
import { type DeliveryStack, startDeliveryStack } from '../helpers/sender.ts';
import { PASSWORD } from './helpers.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/messenger-cli.cjs');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** PIDs whose command line mentions `needle` (our own test process excluded). */
function processesWith(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

describe('CLI as a subprocess (the built dist/messenger-cli.cjs)', function () {
  this.timeout(120_000);
  let stack: DeliveryStack;
  let dir: string;
  const cliArgs = (profile: string, args: string[]) => [
    CLI,
    ...args,
    '--url',
    stack.listener.url,
    '--profile',
    join(dir, `${profile}.json`),
  ];
  const cli = (profile: string, ...args: string[]): Promise<Run> => cliWithInput(profile, undefined, ...args);
  const cliWithInput = (profile: string, input: string | undefined, ...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      const child = execFile(process.execPath, cliArgs(profile, args), { cwd: ROOT }, (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      );
      if (input !== undefined) child.stdin?.end(input);
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
  const hasAddress = async (profile: string) => {
    const r = await cli(profile, 'devices', '--json');
    const list = JSON.parse(r.stdout).devices as { current: boolean; has_address: boolean }[];
    return list.find((d) => d.current)?.has_address;
  };

  /** Long-running commands; whatever a failed test left running is killed in after(). */
  const children = new Set<ChildProcess>();
  let alice: string;
  let bob: string;
  before(async function () {
    this.timeout(120_000);
    await buildOnce();
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

  it('when the password comes on stdin (echo pw | … register), then it is used', async () => {
    const name = uniqueName();
    const r = await cliWithInput('piped', `${PASSWORD}\n`, 'register', name);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include(`logged in as ${name}`);
    const again = await cliWithInput('piped-again', PASSWORD, 'login', name);
    expect(again.code, again.stderr).to.equal(0);
    const none = await cliWithInput('piped-none', '', 'login', name);
    expect(none.code).to.equal(1);
    expect(none.stderr).to.equal('error: no password given (--password, MESSENGER_PASSWORD or stdin)\n');
  });

  it('when a profile holds another user’s keys, then register and login refuse to overwrite it unless --force', async () => {
    const before = readFileSync(join(dir, 'alice.json'), 'utf8');
    const name = uniqueName();
    const refused = await cli('alice', 'register', name, '--password', PASSWORD);
    expect(refused.code).to.equal(2);
    expect(refused.stderr).to.match(new RegExp(`holds the device keys of ${alice}: .*--force`));
    expect(readFileSync(join(dir, 'alice.json'), 'utf8')).to.equal(before);
    const notCreated = await cli('bob', 'send', name, 'are you there?');
    expect(notCreated.stderr, 'the account was not created either').to.match(/\(404 /);
    const login = await cli('alice', 'login', bob, '--password', PASSWORD);
    expect(login.code).to.equal(2);
    await writeFile(join(dir, 'forced.json'), before, { mode: 0o600 });
    const forced = await cli('forced', 'register', name, '--password', PASSWORD, '--force');
    expect(forced.code, forced.stderr).to.equal(0);
    expect(JSON.parse(readFileSync(join(dir, 'forced.json'), 'utf8')).username).to.equal(name);
  });

  it('when the server rejects the input, then the error line shows its details', async () => {
    const r = await cli('short', 'register', uniqueName(), '--password', 'short');
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^error: password: .+ \(400 invalid_request\)\n$/);
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

  it('when a message has an attachment, then files get saves it decrypted, before and after the inbox read it', async () => {
    const src = join(dir, 'report.bin');
    const bytes = nacl.randomBytes(300_000);
    await writeFile(src, bytes);
    const sent = await cli('alice', 'send', bob, 'the report', '--file', src, '--json');
    expect(sent.code, sent.stderr).to.equal(0);
    const { message_id } = JSON.parse(sent.stdout);
    const early = await cli('bob', 'files', 'get', message_id, '--out', dir);
    expect(early.code, early.stderr).to.equal(0);
    expect(early.stdout).to.equal(`saved ${join(dir, 'report (1).bin')} (300000 bytes)\n`);
    const inbox = await cli('bob', 'inbox');
    expect(inbox.stdout).to.include(`the report [file report.bin, 300000 bytes] (files get ${message_id})`);
    const out = await mkdtemp(join(dir, 'out-'));
    const got = await cli('bob', 'files', 'get', message_id, '--out', out);
    expect(got.code, got.stderr).to.equal(0);
    expect(readFileSync(join(out, 'report.bin')).equals(Buffer.from(bytes))).to.equal(true);
    expect(readFileSync(join(dir, 'report (1).bin')).equals(Buffer.from(bytes))).to.equal(true);
    const unknown = await cli('bob', 'files', 'get', randomUUID());
    expect(unknown.code).to.equal(2);
  });

  it('when the address is set and cleared, then the device shows it', async () => {
    const set = await cli('bob', 'address', 'set', 'http://127.0.0.1:9/push');
    expect(set.code, set.stderr).to.equal(0);
    expect(await hasAddress('bob')).to.equal(true);
    const clear = await cli('bob', 'address', 'clear');
    expect(clear.stdout).to.equal('push address cleared: events wait in the inbox\n');
    expect(await hasAddress('bob')).to.equal(false);
  });

  it('when bob runs a sink with --set-address --count 1, then a push is verified, printed decrypted, and the address is cleared on exit', async () => {
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
    expect(pushed).to.include({ from: alice, text: 'pushed to the sink', decrypted: true, verified: true });
    expect(sink.output()).to.not.include('forged');
    expect(sink.errors()).to.include('rejected push: no valid signature');
    expect(await hasAddress('bob'), 'cleared before the process exited').to.equal(false);
  });

  it('when a sink with --set-address gets SIGINT, then it says the push verified and clears the address before exiting', async () => {
    const sink = await background('bob', 'sink', '--port', '0', '--set-address');
    await sink.lines(1);
    expect(await hasAddress('bob')).to.equal(true);
    await cli('alice', 'send', bob, 'a human line');
    await sink.lines(2);
    expect(sink.output()).to.match(new RegExp(`${alice}: a human line \\(push signature verified\\)\\n`));
    sink.child.kill('SIGINT');
    const [code] = await sink.exited;
    expect(code).to.equal(0);
    expect(sink.errors()).to.include('push address cleared');
    expect(await hasAddress('bob')).to.equal(false);
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

  it('when alice runs `presence --watch bob`, then it prints bob online while he listens, offline after, until Ctrl-C', async () => {
    await cli('alice', 'send', bob, 'contacts see each other');
    const watch = await background('alice', 'presence', '--watch', bob, '--json');
    const states = () =>
      watch
        .output()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { username: string; online: boolean });
    await watch.lines(1);
    expect(states()[0]).to.include({ username: bob });
    const listen = await background('bob', 'listen', '--json');
    const seen = async (online: boolean, after: number) => {
      for (
        let i = 0;
        i < 400 &&
        !states()
          .slice(after)
          .some((p) => p.online === online);
        i++
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      return (
        states()
          .slice(after)
          .findIndex((p) => p.online === online) + after
      );
    };
    const on = await seen(true, 0);
    expect(states()[on]).to.include({ username: bob, online: true });
    listen.child.kill('SIGINT');
    await listen.exited;
    const off = await seen(false, on + 1);
    expect(states()[off]).to.include({ username: bob, online: false });
    watch.child.kill('SIGINT');
    const [code] = await watch.exited;
    expect(code).to.equal(0);
  });

  it('when `npm run cli -- listen` is stopped by its PID, then the client stops too and no child is left', async () => {
    const profile = join(dir, 'bob.json');
    const npm = spawn(
      'npm',
      ['run', 'cli', '--', 'listen', '--url', stack.listener.url, '--profile', profile],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.add(npm);
    let err = '';
    npm.stderr?.on('data', (c: Buffer) => {
      err += c.toString();
    });
    for (let i = 0; i < 400 && !err.includes('listening as'); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(err).to.include('listening as');
    expect(
      processesWith(profile).filter((p) => p !== npm.pid),
      'the client runs',
    ).to.have.length.at.least(1);
    npm.kill('SIGTERM');
    await once(npm, 'exit');
    for (let i = 0; i < 100 && processesWith(profile).length; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(processesWith(profile)).to.deep.equal([]);
  });

  it('when a group changes, then events say who joined or left and groups show by name', async () => {
    const carol = uniqueName();
    expect((await cli('carol', 'register', carol, '--password', PASSWORD)).code).to.equal(0);
    const team = `team ${uniqueName()}`;
    const created = await cli('alice', 'group', 'create', team, bob);
    expect(created.stdout).to.match(new RegExp(`^created group "${team}" \\([0-9a-f-]{36}\\)\\n$`));
    const first = await cli('bob', 'inbox');
    expect(first.stdout).to.include(
      `${alice} updated group "${team}": members ${[alice, bob].sort().join(', ')}`,
    );
    const added = await cli('alice', 'group', 'add', team, carol);
    expect(added.code, added.stderr).to.equal(0);
    const send = await cli('carol', 'send', '--group', team, 'hi all');
    expect(send.code, send.stderr).to.equal(0);
    const next = await cli('bob', 'inbox');
    expect(next.stdout).to.include(`${alice} updated group "${team}": ${carol} joined`);
    expect(next.stdout).to.include(`${carol} in group "${team}": hi all`);
    const show = await cli('bob', 'group', 'show', team);
    expect(show.stdout).to.match(new RegExp(`^"${team}" \\([0-9a-f-]{36}\\)  members: `));
    const list = await cli('bob', 'group', 'list');
    expect(list.stdout).to.include(`"${team}"  3 members`);
  });

  it('when something fails, then one line on stderr and a non-zero exit code', async () => {
    const unknown = await cli('alice', 'send', 'nobody_at_all_here', 'hi');
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.match(/^error: .*\(404 not_found\)\n$/);
    const usage = await cli('alice', 'send');
    expect(usage.code).to.equal(2);
    expect(usage.stderr.trim().split('\n')).to.have.length(1);
    const badFlag = await cli('alice', 'whoami', '--no-such-flag');
    expect(badFlag.code).to.equal(2);
    const wrong = await cli('carol-2', 'login', alice, '--password', 'not the password');
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
