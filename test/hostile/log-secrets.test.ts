import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import nacl from 'tweetnacl';
import { testConfig } from '../helpers/env.ts';
import { type Device, envelopesFor, keyOf, login, register, uniqueName } from '../helpers/people.ts';
import { type Sink, startSink } from '../helpers/sink.ts';
import { startTestStack, type TestStack } from '../helpers/stack.ts';

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');

/**
 * A real run (nginx, a listener and a sender as processes, debug logging) through the whole
 * life of two accounts, then a grep of every log file it wrote for anything secret.
 */
describe('logs: no tokens, passwords, keys or ciphertext', function () {
  this.timeout(120_000);
  const runDir = join(tmpdir(), `messenger-logs-${randomBytes(4).toString('hex')}`);
  let stack: TestStack | undefined;
  let sink: Sink | undefined;
  after(async () => {
    await stack?.stop();
    await sink?.close();
    await rm(runDir, { recursive: true, force: true });
  });

  it('when two users register, log in, push, pull, fail, change and delete at debug level, then no secret is in any log', async () => {
    const env = {
      LOG_LEVEL: 'debug',
      AMQP_PREFIX: 'test.hostile-logs',
      AMQP_QUEUE_TYPE: 'classic',
      SENDER_ALLOW_PRIVATE_ADDRESSES: 'true',
    };
    stack = await startTestStack({ listeners: 1, senders: 1, runDir, envOverrides: env });
    sink = await startSink();
    const { call } = stack;
    const secrets: Record<string, string> = {};
    const keep = (label: string, value: string) => {
      secrets[label] = value;
      return value;
    };

    const phone = `+1555${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const alicePw = keep('alice password', `alice pw ${randomBytes(6).toString('hex')}`);
    const res = await call('POST', '/api/users', {
      body: { username: uniqueName('alice'), password: alicePw, phone_number: phone },
    });
    expect(res.status).to.equal(201);
    const alice = { userId: res.body.user_id, username: res.body.username, password: alicePw };
    const bob = await register(
      call,
      uniqueName('bob'),
      keep('bob password', `bob pw ${randomBytes(6).toString('hex')}`),
    );
    const devices: Device[] = [
      await login(call, alice),
      await login(call, bob),
      await login(call, bob, { user_address: `${sink.url}/push` }),
    ];
    const [a, b1, b2] = devices as [Device, Device, Device];
    devices.forEach((d, i) => {
      keep(`token ${i}`, d.token);
      keep(`public key ${i}`, keyOf(d).public_key);
      keep(`secret key ${i}`, b64(d.keys.secretKey));
    });
    const envelopes = envelopesFor(a, [keyOf(b1), keyOf(b2)], 'a secret plaintext');
    envelopes.forEach((e, i) => {
      keep(`nonce ${i}`, e.nonce);
      keep(`ciphertext ${i}`, e.ciphertext);
    });
    const sent = await call('POST', '/api/messages', {
      token: a.token,
      body: { to: bob.username, envelopes },
    });
    expect(sent.status).to.equal(201);
    await sink.waitFor((reqs) => reqs.length >= 1, 30_000);
    const pulled = await call('GET', '/api/messages', { token: b1.token });
    expect(pulled.body.events).to.have.length(1);
    expect(
      (await call('POST', '/api/messages/ack', { token: b1.token, body: { up_to: pulled.body.next_after } }))
        .status,
    ).to.equal(204);
    const wrong = keep('wrong password', `wrong pw ${randomBytes(6).toString('hex')}`);
    const failed = await call('POST', '/api/login', {
      body: { username: bob.username, password: wrong, public_key: b64(nacl.box.keyPair().publicKey) },
    });
    expect(failed.status).to.equal(401);
    const newPw = keep('new password', `new pw ${randomBytes(6).toString('hex')}`);
    expect(
      (
        await call('PATCH', '/api/users/me', {
          token: a.token,
          body: { password: newPw, current_password: alicePw },
        })
      ).status,
    ).to.equal(200);
    const wrongDelete = await call('DELETE', '/api/users/me', { token: b1.token, body: { password: wrong } });
    expect(wrongDelete.status).to.equal(403);
    expect((await call('POST', '/api/logout', { token: b2.token })).status).to.equal(204);
    expect(
      (await call('DELETE', '/api/users/me', { token: a.token, body: { password: newPw } })).status,
    ).to.equal(204);
    const signing = JSON.parse(await readFile(testConfig().SIGNING_KEY_FILE, 'utf8')) as {
      secret_key: string;
    };
    keep('push signing secret key', signing.secret_key);

    await stack.stop();
    stack = undefined;
    const logDir = join(runDir, 'logs');
    const files = await readdir(logDir);
    const logs = await Promise.all(
      files.map(async (f) => [f, await readFile(join(logDir, f), 'utf8')] as const),
    );
    const all = logs.map(([, text]) => text).join('\n');
    // the grep can only fail if the run was logged in detail
    expect(
      files.some((f) => f.includes('listener')),
      files.join(', '),
    ).to.equal(true);
    expect(all).to.contain('"level":20');
    expect(all).to.contain('message accepted');
    const found = Object.entries(secrets).flatMap(([label, value]) =>
      logs.filter(([, text]) => text.includes(value)).map(([file]) => `${label} in ${file}`),
    );
    expect(found).to.deep.equal([]);
    console.log(
      `      logs: ${files.length} files, ${all.length} bytes, ${Object.keys(secrets).length} secrets looked for`,
    );
  });
});
