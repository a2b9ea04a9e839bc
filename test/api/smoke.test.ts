import { expect } from 'chai';
import { useListener } from '../helpers/listener.ts';
import { decrypt, envelopesFor, keyOf, person } from '../helpers/people.ts';

describe('sending a message end to end', () => {
  const t = useListener();

  it("when alice sends to bob, then each of bob's devices and alice's other device decrypt it", async () => {
    const [a1, a2] = await person(t.call, 2);
    const [b1, b2] = await person(t.call, 2);
    if (!a1 || !a2 || !b1 || !b2) throw new Error('setup');
    const dir = await t.call('GET', `/api/users/${b1.username}`, { token: a1.token });
    expect(dir.status).to.equal(200);
    expect(dir.body.devices).to.have.length(2);
    const targets = [...dir.body.devices, keyOf(a2)];
    const sent = await t.call('POST', '/api/messages', {
      token: a1.token,
      body: { to: b1.username, envelopes: envelopesFor(a1, targets, 'hello bob') },
    });
    expect(sent.status, JSON.stringify(sent.body)).to.equal(201);
    for (const d of [b1, b2, a2]) {
      const pull = await t.call('GET', '/api/messages', { token: d.token });
      expect(pull.status).to.equal(200);
      expect(pull.body.events).to.have.length(1);
      expect(decrypt(d, pull.body.events[0])).to.equal('hello bob');
      const ack = await t.call('POST', '/api/messages/ack', {
        token: d.token,
        body: { up_to: pull.body.next_after },
      });
      expect(ack.status).to.equal(204);
      expect((await t.call('GET', '/api/messages', { token: d.token })).body.events).to.deep.equal([]);
    }
  });
});
