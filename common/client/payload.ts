import { b64, unb64, utf8 } from './crypto.ts';

/**
 * An attachment as it travels inside a message's ciphertext: the server only ever sees
 * `file_id` (in the message's `file_ids`) and the encrypted blob; the key and nonce that
 * open it are readable by the message's recipients alone.
 */
export interface FileRef {
  file_id: string;
  /** base64 `nacl.secretbox` key (32 bytes), fresh per file. */
  key: string;
  /** base64 `nacl.secretbox` nonce (24 bytes). */
  nonce: string;
  /** Plaintext size in bytes. */
  size: number;
  /** Hex SHA-256 of the encrypted blob, as the server reported it on upload. */
  sha256: string;
  name?: string;
  type?: string;
}

/**
 * The plaintext inside every envelope the SDK sends (UTF-8 JSON):
 * `{"v":1, "text"?: string, "data"?: base64, "files"?: FileRef[]}`.
 * Anything that is not such an object is read as plain UTF-8 text, so simple clients
 * that box a bare string interoperate.
 */
interface Payload {
  v: 1;
  text?: string;
  data?: string;
  files?: FileRef[];
}

/** A decrypted message body. */
export interface Content {
  text: string | null;
  data: Uint8Array | null;
  files: FileRef[];
}

export function encodePayload(body: string | Uint8Array, files: FileRef[] = []): Uint8Array {
  const p: Payload = { v: 1 };
  if (typeof body === 'string') p.text = body;
  else p.data = b64(body);
  if (files.length) p.files = files;
  return utf8(JSON.stringify(p));
}

export function decodePayload(bytes: Uint8Array): Content {
  const raw = Buffer.from(bytes).toString('utf8');
  try {
    const p = JSON.parse(raw) as Partial<Payload> | null;
    if (p && typeof p === 'object' && p.v === 1) {
      return {
        text: typeof p.text === 'string' ? p.text : null,
        data: typeof p.data === 'string' ? unb64(p.data) : null,
        files: Array.isArray(p.files) ? p.files.filter(isFileRef) : [],
      };
    }
  } catch {}
  return { text: raw, data: null, files: [] };
}

function isFileRef(f: unknown): f is FileRef {
  const r = f as FileRef;
  return (
    !!r &&
    typeof r.file_id === 'string' &&
    typeof r.key === 'string' &&
    typeof r.nonce === 'string' &&
    typeof r.size === 'number' &&
    typeof r.sha256 === 'string'
  );
}
