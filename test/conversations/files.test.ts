import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import nacl from 'tweetnacl';
import { request } from 'undici';
import { createLogger } from '../../common/log.ts';
import { collectFiles } from '../../listener/jobs/file-gc.ts';
import { client } from '../helpers/http.ts';
import { startListener, useListener } from '../helpers/listener.ts';
import { type Device, decrypt, envelopesFor, keyOf, person } from '../helpers/people.ts';
import { eventually, isolatedDatabase } from '../helpers/sender.ts';
import { drain, groupTargets } from './helpers.ts';

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
const octets = { 'content-type': 'application/octet-stream' };

describe('encrypted files', () => {
  const t = useListener();

  async function upload(d: Device, bytes: Buffer, l = t.listener) {
    const res = await client(l.url)('POST', '/api/files', { token: d.token, raw: bytes, headers: octets });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    return res.body as { file_id: string; size: number; sha256: string };
  }

  async function download(d: Device, fileId: string, l = t.listener) {
    const res = await request(`${l.url}/api/files/${fileId}`, {
      headers: { authorization: `Bearer ${d.token}` },
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body };
  }

  async function storedFiles(userId: string, l = t.listener) {
    const { db } = l.deps;
    const files = await db('files').where({ uploader_id: userId }).count<{ count: string }[]>();
    const chunks = await db('file_chunks')
      .whereIn('file_id', db('files').select('id').where({ uploader_id: userId }))
      .count<{ count: string }[]>();
    return { files: Number(files[0]?.count), chunks: Number(chunks[0]?.count) };
  }

  it('when alice uploads an encrypted file and sends it, then bob downloads it byte for byte and decrypts it, and a stranger gets 404', async () => {
    const [a1] = await person(t.call, 1);
    const [b1] = await person(t.call, 1);
    const [s1] = await person(t.call, 1);
    if (!a1 || !b1 || !s1) throw new Error('setup');
    const plain = randomBytes(700 * 1024); // three 256 KiB chunks
    const key = nacl.randomBytes(32);
    const nonce = nacl.randomBytes(24);
    const blob = Buffer.from(nacl.secretbox(plain, nonce, key));
    const up = await upload(a1, blob);
    expect(up.size).to.equal(blob.length);
    expect(up.sha256).to.equal(createHash('sha256').update(blob).digest('hex'));

    const before = await download(b1, up.file_id);
    expect(before.status).to.equal(404);
    const note = JSON.stringify({ file_id: up.file_id, key: b64(key), nonce: b64(nonce) });
    const sent = await t.call('POST', '/api/messages', {
      token: a1.token,
      body: { to: b1.username, envelopes: envelopesFor(a1, [keyOf(b1)], note), file_ids: [up.file_id] },
    });
    expect(sent.status, JSON.stringify(sent.body)).to.equal(201);
    const [event] = await drain(t.call, b1);
    expect(event.file_ids).to.deep.equal([up.file_id]);
    const ref = JSON.parse(decrypt(b1, event) ?? '{}');

    const got = await download(b1, ref.file_id);
    expect(got.status).to.equal(200);
    expect(got.headers['content-type']).to.equal('application/octet-stream');
    expect(got.headers['content-length']).to.equal(String(blob.length));
    expect(got.body.equals(blob)).to.equal(true);
    const opened = nacl.secretbox.open(
      got.body,
      Buffer.from(ref.nonce, 'base64'),
      Buffer.from(ref.key, 'base64'),
    );
    expect(opened && Buffer.from(opened).equals(plain)).to.equal(true);
    expect((await download(a1, up.file_id)).body.equals(blob)).to.equal(true);

    expect((await download(s1, up.file_id)).status).to.equal(404);
    expect((await download(s1, crypto.randomUUID())).status).to.equal(404);
    expect((await download(s1, 'not-an-id')).status).to.equal(404);
  });

  it("when a message references someone else's or an unknown file, then 404 and nothing is delivered", async () => {
    const [a1] = await person(t.call, 1);
    const [b1] = await person(t.call, 1);
    if (!a1 || !b1) throw new Error('setup');
    const bobs = await upload(b1, randomBytes(100));
    for (const fileId of [bobs.file_id, crypto.randomUUID()]) {
      const res = await t.call('POST', '/api/messages', {
        token: a1.token,
        body: { to: b1.username, envelopes: envelopesFor(a1, [keyOf(b1)], 'x'), file_ids: [fileId] },
      });
      expect(res.status).to.equal(404);
    }
    const dup = await upload(a1, randomBytes(10));
    const twice = await t.call('POST', '/api/messages', {
      token: a1.token,
      body: {
        to: b1.username,
        envelopes: envelopesFor(a1, [keyOf(b1)], 'x'),
        file_ids: [dup.file_id, dup.file_id],
      },
    });
    expect(twice.status).to.equal(400);
    expect(await drain(t.call, b1)).to.deep.equal([]);
    expect((await download(a1, bobs.file_id)).status).to.equal(404);
  });

  it('when a file is sent to a group, then members at send time download it, a member who joined later does not, and deleting the message revokes it', async () => {
    const [a1] = await person(t.call, 1);
    const [b1] = await person(t.call, 1);
    const [c1] = await person(t.call, 1);
    if (!a1 || !b1 || !c1) throw new Error('setup');
    const created = await t.call('POST', '/api/groups', {
      token: a1.token,
      body: { name: 'files', members: [b1.username] },
    });
    const groupId = created.body.group_id;
    const up = await upload(a1, randomBytes(1000));
    const sent = await t.call('POST', '/api/messages', {
      token: a1.token,
      body: {
        group_id: groupId,
        envelopes: envelopesFor(a1, await groupTargets(t.call, a1, groupId), 'see attached'),
        file_ids: [up.file_id],
      },
    });
    expect(sent.status, JSON.stringify(sent.body)).to.equal(201);
    await t.call('POST', `/api/groups/${groupId}/members`, {
      token: a1.token,
      body: { username: c1.username },
    });
    expect((await download(b1, up.file_id)).status).to.equal(200);
    expect((await download(c1, up.file_id)).status).to.equal(404);
    expect(
      (await t.call('DELETE', `/api/messages/${sent.body.message_id}`, { token: a1.token })).status,
    ).to.equal(204);
    expect((await download(b1, up.file_id)).status).to.equal(404);
    expect((await download(a1, up.file_id)).status).to.equal(200);
  });

  it('when an upload is older than the GC age and no message references it, then the GC deletes it, and keeps referenced and young ones', async () => {
    // Own database: a GC with a one-second age must not collect other test runs' uploads.
    const database = await isolatedDatabase();
    const gc = await startListener({ DATABASE_URL: database.url, FILE_GC_AGE_SECONDS: '1' });
    try {
      const gcCall = client(gc.url);
      const [a1] = await person(gcCall, 1);
      const [b1] = await person(gcCall, 1);
      if (!a1 || !b1) throw new Error('setup');
      const orphan = await upload(a1, randomBytes(300 * 1024), gc);
      const kept = await upload(a1, randomBytes(10), gc);
      const sent = await gcCall('POST', '/api/messages', {
        token: a1.token,
        body: { to: b1.username, envelopes: envelopesFor(a1, [keyOf(b1)], 'x'), file_ids: [kept.file_id] },
      });
      expect(sent.status).to.equal(201);
      await new Promise((r) => setTimeout(r, 1100)); // past FILE_GC_AGE_SECONDS=1
      const young = await upload(a1, randomBytes(10), gc);
      expect(await storedFiles(a1.userId, gc)).to.deep.equal({ files: 3, chunks: 4 });
      await collectFiles({ ...gc.deps, log: createLogger('silent', 'test') });
      expect((await download(a1, orphan.file_id, gc)).status).to.equal(404);
      expect((await download(a1, kept.file_id, gc)).status).to.equal(200);
      expect((await download(b1, kept.file_id, gc)).status).to.equal(200);
      expect((await download(a1, young.file_id, gc)).status).to.equal(200);
      expect(await storedFiles(a1.userId, gc)).to.deep.equal({ files: 2, chunks: 2 });
    } finally {
      await gc.close();
      await database.drop();
    }
  });

  it('when an upload declares more than 25 MiB, then 413 JSON before reading it, and nothing is stored', async () => {
    const [a1] = await person(t.call, 1);
    if (!a1) throw new Error('setup');
    const big = Buffer.alloc(25 * 1024 * 1024 + 1);
    const res = await request(`${t.listener.url}/api/files`, {
      method: 'POST',
      headers: { ...octets, authorization: `Bearer ${a1.token}`, 'content-length': String(big.length) },
      body: big,
    }).catch((err: unknown) => err as Error);
    if (res instanceof Error) throw res;
    expect(res.statusCode).to.equal(413);
    expect(await res.body.json()).to.include({ error: 'payload_too_large' });
    expect(await storedFiles(a1.userId)).to.deep.equal({ files: 0, chunks: 0 });
  });

  it('when a streamed upload without Content-Length passes the limit, then 413 JSON and nothing is stored', async () => {
    const small = await startListener({ FILE_MAX_BYTES: String(600 * 1024) });
    try {
      const [a1] = await person(client(small.url), 1);
      if (!a1) throw new Error('setup');
      const pieces = Array.from({ length: 10 }, () => randomBytes(100 * 1024));
      const res = await request(`${small.url}/api/files`, {
        method: 'POST',
        headers: { ...octets, authorization: `Bearer ${a1.token}` },
        body: Readable.from(pieces),
      });
      expect(res.statusCode).to.equal(413);
      expect(await res.body.json()).to.include({ error: 'payload_too_large' });
      expect(await storedFiles(a1.userId)).to.deep.equal({ files: 0, chunks: 0 });
    } finally {
      await small.close();
    }
  });

  it('when the client goes away mid-upload, then the partial file is not kept', async () => {
    const [a1] = await person(t.call, 1);
    if (!a1) throw new Error('setup');
    const { port } = new URL(t.listener.url);
    const socket = connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(
      `POST /api/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${a1.token}\r\n` +
        'Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n',
    );
    socket.write(randomBytes(300 * 1024));
    await eventually(async () => (await storedFiles(a1.userId)).chunks === 1, 10_000, 'first chunk stored');
    socket.destroy();
    await eventually(
      async () => (await storedFiles(a1.userId)).files === 0,
      10_000,
      'partial upload dropped',
    );
    expect(await storedFiles(a1.userId)).to.deep.equal({ files: 0, chunks: 0 });
  });

  it('when the body is not application/octet-stream, empty, or unauthenticated, then 415/400/401 and nothing is stored', async () => {
    const [a1] = await person(t.call, 1);
    if (!a1) throw new Error('setup');
    const json = await t.call('POST', '/api/files', { token: a1.token, body: { bytes: 'abc' } });
    expect(json.status).to.equal(415);
    expect(json.body.error).to.equal('unsupported_media_type');
    const text = await t.call('POST', '/api/files', {
      token: a1.token,
      raw: 'abc',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).to.equal(415);
    const none = await t.call('POST', '/api/files', { token: a1.token, raw: 'abc' });
    expect(none.status).to.equal(415);
    const empty = await t.call('POST', '/api/files', {
      token: a1.token,
      raw: Buffer.alloc(0),
      headers: octets,
    });
    expect(empty.status).to.equal(400);
    const anon = await t.call('POST', '/api/files', { raw: 'abc', headers: octets });
    expect(anon.status).to.equal(401);
    expect(await storedFiles(a1.userId)).to.deep.equal({ files: 0, chunks: 0 });
  });
});
