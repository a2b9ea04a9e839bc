import { decryptBlob, encryptBlob, sha256Hex } from './crypto.ts';
import type { FileRef } from './payload.ts';
import type { Session } from './session.ts';
import type { Uploaded } from './types.ts';

/**
 * Encrypts `bytes` with a fresh `nacl.secretbox` key and uploads the blob. Send the returned
 * reference with a message (`send(to, text, {files: [ref]})`): its key goes inside the ciphertext.
 */
export async function uploadFile(
  s: Session,
  bytes: Uint8Array,
  meta: { name?: string; type?: string } = {},
): Promise<FileRef> {
  const { blob, key, nonce } = encryptBlob(bytes);
  const up = await s.http.json<Uploaded>('POST', '/api/files', { bytes: blob });
  if (up.sha256 !== sha256Hex(blob)) throw new Error('upload corrupted: server hash differs');
  return { file_id: up.file_id, key, nonce, size: bytes.length, sha256: up.sha256, ...meta };
}

/** Downloads, checks and decrypts an attachment received in a message. */
export async function downloadFile(s: Session, ref: FileRef): Promise<Uint8Array> {
  const blob = await s.http.bytes('GET', `/api/files/${encodeURIComponent(ref.file_id)}`);
  if (sha256Hex(blob) !== ref.sha256) throw new Error('file hash mismatch');
  const plain = decryptBlob(blob, ref.key, ref.nonce);
  if (!plain) throw new Error('file does not decrypt with the key from the message');
  return plain;
}
