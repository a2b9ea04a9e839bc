import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import nacl from 'tweetnacl';
import { Agent, request } from 'undici';
import { verifyPush } from '../common/client/webhooks.ts';
import { loadStackConfig } from './stack/config.ts';

// The README's worked example, in one file. Usage (tsx scripts/example-send.ts …):
//   keypair                                   → {"public_key","secret_key"} (X25519, base64)
//   seal <recipient_pub> <my_secret> <text> [device_id] → {"device_id"?,"nonce","ciphertext"} (nacl.box)
//   open <sender_pub> <my_secret> <nonce> <ciphertext> → the text
//   demo [https://127.0.0.1:8443]             → registers alice and bob, bob gets pushes at a
//        local address this script serves; alice sends him an encrypted message; the signed
//        push arrives and is decrypted. Needs SENDER_ALLOW_PRIVATE_ADDRESSES=true on the stack.

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

function seal(recipientPub: string, mySecret: string, text: string) {
  const nonce = nacl.randomBytes(nacl.box.nonceLength);
  const box = nacl.box(new TextEncoder().encode(text), nonce, unb64(recipientPub), unb64(mySecret));
  return { nonce: b64(nonce), ciphertext: b64(box) };
}

function open(senderPub: string, mySecret: string, nonce: string, ciphertext: string): string {
  const plain = nacl.box.open(unb64(ciphertext), unb64(nonce), unb64(senderPub), unb64(mySecret));
  if (!plain) throw new Error('cannot decrypt: wrong key or tampered message');
  return new TextDecoder().decode(plain);
}

async function demo(base: string): Promise<void> {
  const config = loadStackConfig();
  const dispatcher = new Agent({ connect: { ca: readFileSync(config.TLS_CERT_FILE) } });
  // biome-ignore lint/suspicious/noExplicitAny: a demo reads the API's JSON as it comes
  const api = async (method: string, path: string, body?: unknown, token?: string): Promise<any> => {
    const res = await request(`${base}${path}`, {
      method: method as 'GET',
      dispatcher,
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? null : JSON.stringify(body),
    });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`${method} ${path} → ${res.statusCode} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };

  // Bob's device receives pushes here.
  const pushes: { headers: IncomingMessage['headers']; body: string }[] = [];
  let arrived: () => void = () => {};
  const got = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  const sink = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      pushes.push({ headers: req.headers, body });
      res.writeHead(204).end();
      arrived();
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const pushUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/push`;

  const suffix = randomBytes(3).toString('hex');
  const [alice, bob] = [`alice_${suffix}`, `bob_${suffix}`];
  const password = 'correct horse battery staple';
  const aliceKeys = nacl.box.keyPair();
  const bobKeys = nacl.box.keyPair();
  await api('POST', '/api/users', { username: alice, password });
  await api('POST', '/api/users', { username: bob, password });
  const a = await api('POST', '/api/login', {
    username: alice,
    password,
    public_key: b64(aliceKeys.publicKey),
  });
  await api('POST', '/api/login', {
    username: bob,
    password,
    public_key: b64(bobKeys.publicKey),
    user_address: pushUrl,
  });
  console.log(`registered ${alice} and ${bob}; ${bob}'s device takes pushes at ${pushUrl}`);

  // Encrypt once per device of the recipient (the directory lists them).
  const dir = await api('GET', `/api/users/${bob}`, undefined, a.token);
  const envelopes = dir.devices.map((d: { device_id: string; public_key: string }) => ({
    device_id: d.device_id,
    ...seal(d.public_key, b64(aliceKeys.secretKey), 'hello bob, only you can read this'),
  }));
  const sent = await api('POST', '/api/messages', { to: bob, envelopes }, a.token);
  console.log(`sent message ${sent.message_id}`);

  const timeout = setTimeout(() => {
    console.error('no push within 30 s (is a sender running, with SENDER_ALLOW_PRIVATE_ADDRESSES=true?)');
    process.exit(1);
  }, 30_000);
  await got;
  clearTimeout(timeout);
  const push = pushes[0] as (typeof pushes)[number];
  const { public_key: serverKey } = await api('GET', '/api/server-key');
  // What every receiver does first: check the server's signature (and the timestamp) of the push.
  let signed = true;
  try {
    verifyPush(push.headers, push.body, serverKey);
  } catch {
    signed = false;
  }
  const event = JSON.parse(push.body);
  const text = open(event.from.public_key, b64(bobKeys.secretKey), event.nonce, event.ciphertext);
  console.log(`push ${event.id} (signature ${signed ? 'valid' : 'INVALID'}) decrypts to: "${text}"`);
  sink.close();
  await dispatcher.close();
  if (!signed) process.exit(1);
}

const [command = 'demo', ...args] = process.argv.slice(2);
if (command === 'keypair') {
  const k = nacl.box.keyPair();
  console.log(JSON.stringify({ public_key: b64(k.publicKey), secret_key: b64(k.secretKey) }));
} else if (command === 'seal' && (args.length === 3 || args.length === 4)) {
  const box = seal(args[0] as string, args[1] as string, args[2] as string);
  console.log(JSON.stringify(args[3] ? { device_id: args[3], ...box } : box));
} else if (command === 'open' && args.length === 4) {
  console.log(open(args[0] as string, args[1] as string, args[2] as string, args[3] as string));
} else if (command === 'demo') {
  await demo(args[0] ?? `https://127.0.0.1:${loadStackConfig().HTTPS_PORT}`);
} else {
  console.error(
    'usage: example-send.ts keypair | seal <pub> <secret> <text> [device_id] | open <pub> <secret> <nonce> <ct> | demo [url]',
  );
  process.exit(2);
}
