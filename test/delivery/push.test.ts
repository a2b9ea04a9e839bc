import { expect } from 'chai';
import { verifyWebhook } from '../../common/crypto/webhook.ts';
import { decrypt } from '../helpers/people.ts';
import { type DeliveryStack, eventually, startDeliveryStack, type TestSender } from '../helpers/sender.ts';
import { type Sink, startSink } from '../helpers/sink.ts';
import { pair, send } from './people.ts';

describe('push delivery', () => {
  let stack: DeliveryStack;
  let sender: TestSender;
  let sink: Sink;
  before(async () => {
    stack = await startDeliveryStack();
    sender = await stack.startSender();
  });
  afterEach(() => sink?.close());
  after(async () => {
    await sender?.stop();
    await stack?.close();
  });

  it('when a message is sent to a device with an address, then a signed push arrives that the recipient decrypts', async () => {
    sink = await startSink();
    const { from, to } = await pair(stack.call, `${sink.url}/push/here?token=abc`);
    const messageId = await send(stack.call, from, to, 'hello over push');
    const [req] = await sink.waitFor((r) => r.length >= 1);
    if (!req) throw new Error('no push');
    expect(req.method).to.equal('POST');
    expect(req.path).to.equal('/push/here?token=abc');
    expect(req.headers['content-type']).to.equal('application/json');
    const event = req.json();
    expect(event.message_id).to.equal(messageId);
    expect(event.type).to.equal('message');
    expect(req.headers['webhook-id']).to.equal(event.id);
    expect(decrypt(to, event)).to.equal('hello over push');

    const key = await stack.call('GET', '/api/server-key');
    const publicKey = Buffer.from(key.body.public_key, 'base64');
    const headers = {
      id: String(req.headers['webhook-id']),
      timestamp: String(req.headers['webhook-timestamp']),
      signature: String(req.headers['webhook-signature']),
    };
    expect(headers.signature).to.match(/^v1a,[A-Za-z0-9+/]+=*$/);
    expect(Math.abs(Number(headers.timestamp) - Date.now() / 1000)).to.be.below(60);
    expect(verifyWebhook(publicKey, headers, req.body)).to.equal(true);
    expect(verifyWebhook(publicKey, headers, req.body.replace('message', 'massage'))).to.equal(false);

    // Delivered means removed from the inbox: a pull no longer returns it.
    await eventually(
      async () => {
        const pull = await stack.call('GET', '/api/messages', { token: to.token });
        return pull.body.events.length === 0;
      },
      5_000,
      'inbox emptied',
    );
  });
});
