import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { SavedProfile } from './session.ts';

/** The saved device in `path`, or null when there is none yet. */
export function readProfileFile(path: string): SavedProfile | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return null;
    throw err;
  }
  try {
    return JSON.parse(text) as SavedProfile;
  } catch {
    throw new Error(`profile ${path} is not valid JSON`);
  }
}

/**
 * Writes a profile readable by its owner only (0600, directory 0700): it holds the device's
 * secret key and token. Written to a temp file and renamed, so a crash never leaves half a key.
 */
export function writeProfileFile(path: string, profile: SavedProfile): void {
  const full = resolve(path);
  mkdirSync(dirname(full), { recursive: true, mode: 0o700 });
  const tmp = `${full}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(profile, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, full);
}
