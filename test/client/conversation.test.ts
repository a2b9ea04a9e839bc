import { expect } from 'chai';
import { type ApiError, type Messenger, type Received, verifyPush } from '../../common/client/index.ts';
import { openEvent } from '../../common/client/messages.ts';
import { type DeliveryStack, startDeliveryStack } from '../helpers/sender.ts';
import { type Sink, startSink } from '../helpers/sink.ts';
import { newUser } from './helpers.ts';

/** Everything waiting for a device, decrypted, then acknowledged. */
async function drain(m: Messenger): Promise<Received[]> {
  const all: Received[] = [];
  for await (const page of m.pages()) {
    all.push(...page.events);
    if (page.events.length) await m.ack(page.next_after);
  }
  return all;
}

const texts = (events: Received[], type = 'message') =>
  events.filter((e) => e.type === type).map((e) => e.content?.text);

describe('a full conversation through the SDK (groups, files, edits, receipts, pushes)', () => {
  let stack: DeliveryStack;
  let sink: Sink;
  let serverKey: string;
  let alice: Messenger[];
  let bob: Messenger[];
  let carol: Messenger[];
  // bob's second device takes pushes; the others pull.
  const pushedTo = (m: Messenger): Received[] =>
    sink.requests.map((r) => openEvent(m, verifyPush(r.headers, r.body, serverKey)));

  before(async function () {
    this.timeout(60_000); // a fresh database, migrated, plus relay and sender
    stack = await startDeliveryStack();
    await stack.startSender();
    sink = await startSink();
    alice = await newUser(stack.listener.url, 2);
    bob = await newUser(stack.listener.url, 2);
    carol = await newUser(stack.listener.url, 1);
    await bob[1]?.setAddress(`${sink.url}/bob`);
    serverKey = (await alice[0]?.serverKey()) ?? '';
  });
  after(async () => {
    await sink?.close();
    await stack?.close();
  });

  const [A, B, C] = [0, 1, 2];
  const dev = (who: number, i: number): Messenger => {
    const m = [alice, bob, carol][who]?.[i];
    if (!m) throw new Error('setup');
    return m;
  };
  const name = (who: number) => dev(who, 0).identity.username;

  it('when alice writes to a group, then every member device reads it, by pull or verified push', async () => {
    const groupId = await dev(A, 0).createGroup('trip', [name(B), name(C)]);
    await dev(A, 0).send({ group: groupId }, 'hello group');
    for (const m of [dev(A, 1), dev(B, 0), dev(C, 0)]) {
      const events = await drain(m);
      expect(events.filter((e) => e.type === 'group.updated')).to.have.length.at.least(1);
      expect(texts(events)).to.deep.equal(['hello group']);
      expect(events.find((e) => e.type === 'message')?.group_id).to.equal(groupId);
    }
    await sink.waitFor(() => pushedTo(dev(B, 1)).some((e) => e.content?.text === 'hello group'));
    expect(texts(await drain(dev(A, 0))), 'the sending device gets no copy').to.deep.equal([]);
    const g = await dev(B, 0).group(groupId);
    expect(g.members.map((u) => u.username).sort()).to.deep.equal([name(A), name(B), name(C)].sort());
  });

  it('when alice sends bob an encrypted file, then bob downloads and decrypts it and carol cannot', async () => {
    const bytes = new Uint8Array(200_000).map((_, i) => (i * 7) % 256);
    const ref = await dev(A, 0).uploadFile(bytes, { name: 'photo.bin' });
    const sent = await dev(A, 0).send(name(B), 'see attached', { files: [ref] });
    const [event] = (await drain(dev(B, 0))).filter((e) => e.type === 'message');
    expect(event?.message_id).to.equal(sent.message_id);
    expect(event?.file_ids).to.deep.equal([ref.file_id]);
    const got = event?.content?.files[0];
    expect(got).to.deep.include({ file_id: ref.file_id, name: 'photo.bin', size: bytes.length });
    if (!got) throw new Error('no file reference');
    expect(Buffer.from(await dev(B, 0).downloadFile(got)).equals(Buffer.from(bytes))).to.equal(true);
    const denied = await dev(C, 0)
      .downloadFile(got)
      .catch((e: unknown) => e);
    expect((denied as ApiError).status).to.equal(404);
    await drain(dev(A, 1));
  });

  it('when alice edits and then deletes a message, then bob sees the new text, then the deletion', async () => {
    const sent = await dev(A, 0).send(name(B), 'frist');
    await drain(dev(B, 0));
    await drain(dev(A, 1));
    // No target given: the SDK learns the devices from the server's 409 and retries once.
    const edited = await dev(A, 0).edit(sent.message_id, 'first');
    expect(edited.message_id).to.equal(sent.message_id);
    const [e] = await drain(dev(B, 0));
    expect(e).to.deep.include({ type: 'message.edited', message_id: sent.message_id, sent_at: sent.sent_at });
    expect(e?.content?.text).to.equal('first');
    expect(e?.edited_at).to.be.a('string');
    await dev(A, 1).edit(sent.message_id, 'first!', { target: name(B) });
    expect(texts(await drain(dev(B, 0)), 'message.edited')).to.deep.equal(['first!']);
    await dev(A, 0).deleteMessage(sent.message_id);
    const [d] = await drain(dev(B, 0));
    expect(d).to.deep.include({ type: 'message.deleted', message_id: sent.message_id, content: null });
    const again = await dev(A, 0)
      .edit(sent.message_id, 'too late', { target: name(B) })
      .catch((x: unknown) => x);
    expect((again as ApiError).status).to.equal(404);
  });

  it('when bob reads a message, then both of alice’s devices get a read receipt', async () => {
    const sent = await dev(A, 0).send(name(B), 'did you read this?');
    await drain(dev(A, 1));
    await drain(dev(B, 0));
    await dev(B, 0).receipt(sent.message_id, 'read');
    for (const m of [dev(A, 0), dev(A, 1)]) {
      const receipts = (await drain(m)).filter((e) => e.type === 'receipt');
      expect(receipts.map((r) => [r.message_id, r.receipt, r.from.username])).to.deep.equal([
        [sent.message_id, 'read', name(B)],
      ]);
    }
  });

  it('when carol finds a public group by name, then she can join it herself and read what is sent after', async () => {
    const tag = `hikers ${Math.random().toString(36).slice(2, 10)}`;
    const groupId = await dev(A, 0).createGroup(tag, [], { isPublic: true });
    const first = await dev(C, 0).publicGroups(tag, { limit: 1 });
    expect(first.groups.map((g) => [g.group_id, g.name, g.is_public, g.member_count])).to.deep.equal([
      [groupId, tag, true, 1],
    ]);
    await dev(C, 0).addMember(groupId, name(C));
    expect((await dev(C, 0).groups()).map((g) => g.group_id)).to.include(groupId);
    await drain(dev(C, 0));
    await dev(A, 0).send({ group: groupId }, 'welcome carol');
    expect(texts(await drain(dev(C, 0)))).to.deep.equal(['welcome carol']);
    await drain(dev(A, 1));
  });
});
