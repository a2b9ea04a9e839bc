import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import nacl from 'tweetnacl';

export const b64 = (u: Uint8Array): string => Buffer.from(u).toString('base64');
export const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
export const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
export const sha256Hex = (u: Uint8Array): string => createHash('sha256').update(u).digest('hex');

/** An X25519 key pair in base64, as kept in a profile. */
export interface KeyPair {
  public_key: string;
  secret_key: string;
}

export function newKeyPair(): KeyPair {
  const k = nacl.box.keyPair();
  return { public_key: b64(k.publicKey), secret_key: b64(k.secretKey) };
}

/** PKCS#8 DER header of a raw 32-byte X25519 private key (RFC 8410). */
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * Checks that a saved pair is well-formed and that its halves belong together. The public half
 * is derived with node:crypto's native X25519 (the same curve as nacl.box): tweetnacl's pure-JS
 * scalar multiplication took 40-150 ms of every CLI start on a cold JIT.
 */
export function checkKeyPair(k: KeyPair): void {
  const secret = Buffer.from(k.secret_key, 'base64');
  if (secret.length !== nacl.box.secretKeyLength) throw new Error('malformed secret key');
  const key = createPrivateKey({ key: Buffer.concat([X25519_PKCS8, secret]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (b64(spki.subarray(-nacl.box.publicKeyLength)) !== k.public_key) {
    throw new Error('public key does not match the secret key');
  }
}

export interface Envelope {
  device_id: string;
  nonce: string;
  ciphertext: string;
}

/** `nacl.box` of `plaintext` for one device, with a fresh random nonce. */
export function sealFor(
  plaintext: Uint8Array,
  to: { device_id: string; public_key: string },
  mySecretKey: string,
): Envelope {
  const nonce = nacl.randomBytes(nacl.box.nonceLength);
  const box = nacl.box(plaintext, nonce, unb64(to.public_key), unb64(mySecretKey));
  return { device_id: to.device_id, nonce: b64(nonce), ciphertext: b64(box) };
}

/** Opens a box addressed to us; null when it was not (tampered, wrong key). */
export function openBox(
  box: { nonce: string; ciphertext: string; senderPublicKey: string },
  mySecretKey: string,
): Uint8Array | null {
  return nacl.box.open(
    unb64(box.ciphertext),
    unb64(box.nonce),
    unb64(box.senderPublicKey),
    unb64(mySecretKey),
  );
}

/** Symmetric encryption of a file with a fresh key: the key travels inside the message. */
export function encryptBlob(bytes: Uint8Array): { blob: Uint8Array; key: string; nonce: string } {
  const key = nacl.randomBytes(nacl.secretbox.keyLength);
  const nonce = nacl.randomBytes(nacl.secretbox.nonceLength);
  return { blob: nacl.secretbox(bytes, nonce, key), key: b64(key), nonce: b64(nonce) };
}

export function decryptBlob(blob: Uint8Array, key: string, nonce: string): Uint8Array | null {
  return nacl.secretbox.open(blob, unb64(nonce), unb64(key));
}
