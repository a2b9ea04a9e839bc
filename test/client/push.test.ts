import { expect } from 'chai';
import nacl from 'tweetnacl';
import { signPush, verifyPush, WebhookVerificationError } from '../../common/client/index.ts';
import { openEvent } from '../../common/client/messages.ts';
import { type DeliveryStack, startDeliveryStack } from '../helpers/sender.ts';
import { type Sink, type SinkRequest, startSink } from '../helpers/sink.ts';
import { newUser } from './helpers.ts';

function rejects(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(WebhookVerificationError);
    return (err as Error).message;
  }
  throw new Error('expected the push to be rejected');
}

describe('verifyPush on real pushes', () => {
  let stack: DeliveryStack;
  let sink: Sink;
  let push: SinkRequest;
  let serverKey: string;
  let bob: Awaited<ReturnType<typeof newUser>>[number];

  before(async function () {
    this.timeout(60_000); // a fresh database, migrated, plus relay and sender
    stack = await startDeliveryStack();
    await stack.startSender();
    sink = await startSink();
    const [a] = await newUser(stack.listener.url, 1);
    const [b] = await newUser(stack.listener.url, 1);
    if (!a || !b) throw new Error('setup');
    bob = b;
    await b.setAddress(`${sink.url}/push?device=bob`);
    serverKey = await a.serverKey();
    await a.send(b.identity.username, 'pushed to bob');
    const [first] = await sink.waitFor((r) => r.length >= 1);
    if (!first) throw new Error('no push');
    push = first;
  });
  after(async () => {
    await sink?.close();
    await stack?.close();
  });

  it('when a real push arrives, then it verifies with the server key and decrypts', () => {
    const event = verifyPush(push.headers, push.body, serverKey);
    expect(push.path).to.equal('/push?device=bob');
    expect(event.id).to.equal(push.headers['webhook-id']);
    expect(openEvent(bob, event).content?.text).to.equal('pushed to bob');
  });

  it('when a real push is handed to receivePush, then one call verifies it and returns it decrypted', async () => {
    const event = await bob.receivePush(push.headers, push.body);
    expect(event.id).to.equal(push.headers['webhook-id']);
    expect(event.content?.text).to.equal('pushed to bob');
    const withKey = await bob.receivePush(push.headers, Buffer.from(push.body), { serverKey });
    expect(withKey.content?.text).to.equal('pushed to bob');
    const forged = push.body.replace('"seq":', '"seq": ');
    const err = await bob.receivePush(push.headers, forged).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(WebhookVerificationError);
  });

  it('when one byte of the body is changed, then the push is rejected', () => {
    const forged = push.body.replace('"seq":', '"seq": ');
    expect(forged).to.not.equal(push.body);
    expect(rejects(() => verifyPush(push.headers, forged, serverKey))).to.match(/signature/);
  });

  it('when the push is older (or newer) than the tolerance, then it is rejected', () => {
    const ts = Number(push.headers['webhook-timestamp']);
    expect(rejects(() => verifyPush(push.headers, push.body, serverKey, { now: ts + 301 }))).to.match(
      /tolerance/,
    );
    expect(rejects(() => verifyPush(push.headers, push.body, serverKey, { now: ts - 301 }))).to.match(
      /tolerance/,
    );
    expect(verifyPush(push.headers, push.body, serverKey, { now: ts + 299 }).id).to.be.a('string');
  });

  it('when an attacker re-signs the push with their own key, then it is rejected', () => {
    const attacker = nacl.sign.keyPair();
    const ts = Math.floor(Date.now() / 1000);
    const id = String(push.headers['webhook-id']);
    const headers = {
      'webhook-id': id,
      'webhook-timestamp': String(ts),
      'webhook-signature': signPush(id, ts, push.body, attacker.secretKey),
    };
    expect(rejects(() => verifyPush(headers, push.body, serverKey))).to.match(/signature/);
    // The same headers verify under the attacker's key: the check really is the key.
    expect(verifyPush(headers, push.body, attacker.publicKey).id).to.equal(id);
  });

  it('when a replayed push gets a fresh timestamp, then the old signature no longer matches', () => {
    const headers = { ...push.headers, 'webhook-timestamp': String(Math.floor(Date.now() / 1000) + 5) };
    expect(rejects(() => verifyPush(headers, push.body, serverKey))).to.match(/signature/);
  });

  it('when several signatures are given, then one valid v1a entry is enough and others are ignored', () => {
    const junk = `v1,${Buffer.alloc(32).toString('base64')} v1a,${Buffer.alloc(64).toString('base64')}`;
    const headers = { ...push.headers, 'webhook-signature': `${junk} ${push.headers['webhook-signature']}` };
    expect(verifyPush(headers, push.body, serverKey).id).to.equal(push.headers['webhook-id']);
    const onlyJunk = { ...push.headers, 'webhook-signature': junk };
    expect(rejects(() => verifyPush(onlyJunk, push.body, serverKey))).to.match(/signature/);
  });

  it('when headers are missing or malformed, then the push is rejected', () => {
    const { 'webhook-signature': _, ...noSig } = push.headers;
    expect(rejects(() => verifyPush(noSig, push.body, serverKey))).to.match(/missing/);
    const badTs = { ...push.headers, 'webhook-timestamp': '12e9' };
    expect(rejects(() => verifyPush(badTs, push.body, serverKey))).to.match(/timestamp/);
    const otherId = { ...push.headers, 'webhook-id': 'someone-else' };
    expect(rejects(() => verifyPush(otherId, push.body, serverKey))).to.match(/signature/);
  });

  it('when the headers come as a fetch Headers object, then they verify the same', () => {
    const h = new Headers();
    for (const k of ['webhook-id', 'webhook-timestamp', 'webhook-signature'])
      h.set(k, String(push.headers[k]));
    expect(verifyPush(h, Buffer.from(push.body), serverKey).id).to.equal(push.headers['webhook-id']);
  });
});
