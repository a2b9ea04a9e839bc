import { createPrivateKey, type KeyObject, sign } from 'node:crypto';
import nacl from 'tweetnacl';

// PKCS#8 DER header of an ed25519 private key; the 32-byte seed follows.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const keyObjects = new WeakMap<Uint8Array, KeyObject>();

/**
 * The nacl secret key (seed ‖ public key) as a node:crypto key, made once per key: OpenSSL's
 * ed25519 signs in tens of microseconds where tweetnacl's pure JS takes milliseconds, and the
 * sender signs every push. Ed25519 signatures are deterministic, so the bytes are the same.
 */
function signingKey(secretKey: Uint8Array): KeyObject {
  let key = keyObjects.get(secretKey);
  if (!key) {
    const der = Buffer.concat([ED25519_PKCS8_PREFIX, secretKey.subarray(0, 32)]);
    key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    keyObjects.set(secretKey, key);
  }
  return key;
}

/**
 * Standard Webhooks signing with ed25519 ("v1a"): the signed content is
 * `${webhook-id}.${webhook-timestamp}.${body}`, the signature is sent base64 in
 * `webhook-signature: v1a,<sig>`. webhook-id is the event id, so a retried or duplicated push
 * carries the same id and receivers can dedupe on it.
 */
export function webhookHeaders(
  secretKey: Uint8Array,
  id: string,
  timestamp: number,
  body: string,
): Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string> {
  const signed = Buffer.from(`${id}.${timestamp}.${body}`, 'utf8');
  const sig = sign(null, signed, signingKey(secretKey));
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': `v1a,${sig.toString('base64')}`,
  };
}

/** Receiver side: true when one of the space-separated `v1a,` signatures verifies with `publicKey`. */
export function verifyWebhook(
  publicKey: Uint8Array,
  headers: { id: string; timestamp: string; signature: string },
  body: string,
): boolean {
  const signed = Buffer.from(`${headers.id}.${headers.timestamp}.${body}`, 'utf8');
  return headers.signature.split(' ').some((part) => {
    const [version, value] = part.split(',', 2);
    if (version !== 'v1a' || !value) return false;
    const sig = Buffer.from(value, 'base64');
    return sig.length === nacl.sign.signatureLength && nacl.sign.detached.verify(signed, sig, publicKey);
  });
}
