import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { useListener } from '../helpers/listener.ts';
import { type Device, envelopesFor, keyOf, person } from '../helpers/people.ts';

/**
 * Ids are opaque strings (docs/API.md, conventions): one in a path or body that names nothing of
 * ours is 404 — or 409 `extra_devices` for an envelope's `device_id` — never a 400 about its
 * format, and the answer is the one an unknown well-formed id gets. (POST /api/messages is covered
 * with the send path.)
 */
describe('opaque ids: an id that names nothing is not found, whatever its shape', () => {
  const t = useListener();
  const strangers = [
    'nope',
    'x'.repeat(300),
    '0123456789abcdef0123456789abcdef',
    '{00000000-0000-0000-0000-000000000000}',
    'ünïcode',
  ];
  let a: Device;
  let b: Device;
  let groupId: string;
  let messageId: string;

  before(async () => {
    [a] = (await person(t.call, 1)) as [Device];
    [b] = (await person(t.call, 1)) as [Device];
    groupId = (
      await t.call('POST', '/api/groups', { token: a.token, body: { name: 'ids', members: [b.username] } })
    ).body.group_id;
    const sent = await t.call('POST', '/api/messages', {
      token: a.token,
      body: { to: b.username, envelopes: envelopesFor(a, [keyOf(b)], 'hi') },
    });
    expect(sent.status).to.equal(201);
    messageId = sent.body.message_id;
  });

  const enc = (id: string) => encodeURIComponent(id);
  const cases: [string, (id: string) => Promise<{ status: number; body: Record<string, unknown> }>][] = [
    ['DELETE /api/devices/{id}', (id) => t.call('DELETE', `/api/devices/${enc(id)}`, { token: a.token })],
    ['GET /api/groups/{id}', (id) => t.call('GET', `/api/groups/${enc(id)}`, { token: a.token })],
    [
      'POST /api/groups/{id}/members',
      (id) =>
        t.call('POST', `/api/groups/${enc(id)}/members`, { token: a.token, body: { username: b.username } }),
    ],
    [
      'DELETE /api/groups/{id}/members/{user_id}',
      (id) => t.call('DELETE', `/api/groups/${enc(id)}/members/${b.userId}`, { token: a.token }),
    ],
    [
      'DELETE /api/groups/{group_id}/members/{id}',
      (id) => t.call('DELETE', `/api/groups/${groupId}/members/${enc(id)}`, { token: a.token }),
    ],
    ['GET /api/files/{id}', (id) => t.call('GET', `/api/files/${enc(id)}`, { token: a.token })],
    [
      'PUT /api/messages/{id}',
      (id) =>
        t.call('PUT', `/api/messages/${enc(id)}`, {
          token: a.token,
          body: { envelopes: envelopesFor(a, [keyOf(b)], 'edited') },
        }),
    ],
    ['DELETE /api/messages/{id}', (id) => t.call('DELETE', `/api/messages/${enc(id)}`, { token: a.token })],
    [
      'POST /api/messages/{id}/receipts',
      (id) => t.call('POST', `/api/messages/${enc(id)}/receipts`, { token: b.token, body: { type: 'read' } }),
    ],
    [
      'POST /api/login {device_id}',
      (id) =>
        t.call('POST', '/api/login', {
          body: {
            username: a.username,
            password: a.password,
            public_key: Buffer.from(a.keys.publicKey).toString('base64'),
            device_id: id,
          },
        }),
    ],
  ];

  for (const [route, attempt] of cases) {
    it(`when ${route} names an id of any other shape, then 404 not_found, the same answer as an unknown id`, async () => {
      const unknown = await attempt(randomUUID());
      expect(unknown.status, 'unknown well-formed id').to.equal(404);
      for (const id of strangers) {
        const res = await attempt(id);
        expect(res.status, `${route} ${id.slice(0, 40)}`).to.equal(404);
        expect(res.body, id.slice(0, 40)).to.deep.equal(unknown.body);
      }
    });
  }

  it("when an edit's envelope names a device id of any shape that is not expected, then 409 device_mismatch lists it in extra_devices", async () => {
    for (const id of ['nope', randomUUID()]) {
      const res = await t.call('PUT', `/api/messages/${messageId}`, {
        token: a.token,
        body: {
          envelopes: [
            ...envelopesFor(a, [keyOf(b)], 'edited'),
            ...envelopesFor(a, [{ ...keyOf(b), device_id: id }], 'x'),
          ],
        },
      });
      expect(res.status, id).to.equal(409);
      expect(res.body.error).to.equal('device_mismatch');
      expect(res.body.extra_devices).to.deep.equal([id]);
    }
  });
});
