import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { SavedProfile } from '../../common/client/index.ts';

export function defaultProfilePath(): string {
  return join(homedir(), '.messenger', 'profile.json');
}

/** The saved device, or null when there is none yet. */
export async function readProfile(path: string): Promise<SavedProfile | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
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
 * Writes the profile readable by its owner only (0600, directory 0700): it holds the device's
 * secret key and token. Written to a temp file and renamed, so a crash never leaves half a key.
 */
export async function writeProfile(path: string, profile: SavedProfile): Promise<void> {
  const full = resolve(path);
  await mkdir(dirname(full), { recursive: true, mode: 0o700 });
  const tmp = `${full}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(profile, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, full);
}
