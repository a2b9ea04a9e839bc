import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { FileRef } from '../../common/client/index.ts';

/** What the CLI remembers between runs beside a profile: attachment keys and group rosters. */
export interface CliState {
  /** Attachments of received messages by message id: their keys only ever arrive inside the message. */
  files: Record<string, FileRef[]>;
  /** Groups as last seen, so a `group.updated` can say who joined or left. */
  groups: Record<string, { name: string; members: string[] }>;
}

/** Messages whose attachments are remembered; the oldest are forgotten first. */
const KEEP_FILES = 500;

const statePath = (profilePath: string) => `${resolve(profilePath).replace(/\.json$/, '')}.state.json`;

export function readState(profilePath: string): CliState {
  try {
    const s = JSON.parse(readFileSync(statePath(profilePath), 'utf8')) as Partial<CliState>;
    return { files: s.files ?? {}, groups: s.groups ?? {} };
  } catch {
    return { files: {}, groups: {} };
  }
}

/** Written 0600 like the profile: the file keys open the attachments. */
export function writeState(profilePath: string, state: CliState): void {
  const ids = Object.keys(state.files);
  for (const id of ids.slice(0, Math.max(0, ids.length - KEEP_FILES))) delete state.files[id];
  const path = statePath(profilePath);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}
