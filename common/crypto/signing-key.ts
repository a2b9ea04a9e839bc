import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import nacl from 'tweetnacl';

export interface SigningKey {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** Reads the ed25519 push-signing key; a missing or malformed file stops the process. */
export async function loadSigningKey(path: string): Promise<SigningKey> {
  if (!existsSync(path)) throw new Error(`signing key ${path} is missing: run \`npm run keys\` first`);
  const json = JSON.parse(await readFile(path, 'utf8')) as { secret_key?: unknown };
  const secret =
    typeof json.secret_key === 'string' ? Buffer.from(json.secret_key, 'base64') : Buffer.alloc(0);
  if (secret.length !== nacl.sign.secretKeyLength) throw new Error(`signing key ${path} is malformed`);
  const pair = nacl.sign.keyPair.fromSecretKey(new Uint8Array(secret));
  return { publicKey: pair.publicKey, secretKey: pair.secretKey };
}

/** Creates the key file (mode 0600) unless it exists; returns true when a key was created. */
export async function ensureSigningKey(path: string): Promise<boolean> {
  if (existsSync(path)) return false;
  await mkdir(dirname(path), { recursive: true });
  const pair = nacl.sign.keyPair();
  const body = JSON.stringify({
    algorithm: 'ed25519',
    public_key: Buffer.from(pair.publicKey).toString('base64'),
    secret_key: Buffer.from(pair.secretKey).toString('base64'),
  });
  await writeFile(path, `${body}\n`, { mode: 0o600, flag: 'wx' });
  return true;
}
