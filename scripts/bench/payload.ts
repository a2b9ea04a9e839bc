import { randomUUID } from 'node:crypto';
import nacl from 'tweetnacl';

/** Every stage is measured with the same message: 1 KiB of plaintext, boxed for one device. */
const PLAINTEXT_BYTES = 1024;

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');

export interface Envelope {
  device_id: string;
  nonce: string;
  ciphertext: string;
}

/** A 1 KiB plaintext boxed from `from` to `toPublicKey` (base64), with a fresh nonce. */
export function envelope(from: nacl.BoxKeyPair, to: { device_id: string; public_key: string }): Envelope {
  const nonce = nacl.randomBytes(24);
  const box = nacl.box(
    nacl.randomBytes(PLAINTEXT_BYTES),
    nonce,
    Buffer.from(to.public_key, 'base64'),
    from.secretKey,
  );
  return { device_id: to.device_id, nonce: b64(nonce), ciphertext: b64(box) };
}

/** A `POST /api/messages` body for one recipient device. */
export function sendBody(to: string, env: Envelope): string {
  return JSON.stringify({ to, envelopes: [env] });
}

/** An event as the server stores and pushes it, carrying one 1 KiB envelope (ids are fresh). */
export function eventJson(seq = 1, deviceId = randomUUID()): string {
  const sender = nacl.box.keyPair();
  const env = envelope(sender, { device_id: deviceId, public_key: b64(nacl.box.keyPair().publicKey) });
  return JSON.stringify({
    id: randomUUID(),
    seq,
    type: 'message',
    message_id: randomUUID(),
    group_id: null,
    sent_at: new Date().toISOString(),
    from: {
      user_id: randomUUID(),
      username: 'bench_sender',
      device_id: randomUUID(),
      public_key: b64(sender.publicKey),
    },
    nonce: env.nonce,
    ciphertext: env.ciphertext,
    file_ids: [],
  });
}
