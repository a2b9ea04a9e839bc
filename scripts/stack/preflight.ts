import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A program the native stack runs, and the Debian package that brings it. */
export interface Requirement {
  command: string;
  pkg: string;
}

export const NGINX: Requirement = { command: 'nginx', pkg: 'nginx' };
export const OPENSSL: Requirement = { command: 'openssl', pkg: 'openssl' };
export const POSTGRES: Requirement = { command: 'pg_ctlcluster', pkg: 'postgresql' };
export const RABBITMQ: Requirement = { command: 'rabbitmq-server', pkg: 'rabbitmq-server' };

/** Whether `command` (a name looked up on PATH, or a path) is an executable file. */
function onPath(command: string, path = process.env.PATH ?? ''): boolean {
  const candidates = isAbsolute(command) ? [command] : path.split(delimiter).map((d) => join(d, command));
  return candidates.some((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export interface InstallPolicy {
  /** `auto`: as root, install what is missing with apt-get (as .ci/run does); `never`: only say what. */
  install: 'auto' | 'never';
  log: (msg: string) => void;
  /** The PATH programs are looked up on (default the process's). */
  path?: string;
  isRoot?: boolean;
}

/** The one line that tells a user what to install, when the stack will not (or cannot). */
function installHint(missing: Requirement[]): string {
  const pkgs = [...new Set(missing.map((r) => r.pkg))].join(' ');
  const what = missing.map((r) => (r.command === r.pkg ? r.pkg : `${r.command} (package ${r.pkg})`));
  return `${what.join(', ')} not installed: run \`sudo apt-get update && sudo apt-get install -y ${pkgs}\`, then npm run stack again`;
}

/**
 * Makes sure every required program is on PATH. As root (and unless STACK_INSTALL=never) the
 * missing packages are installed the way .ci/run does (apt-get update, then a quiet
 * non-interactive install); otherwise this throws one line naming the packages and the command.
 */
export async function ensureInstalled(required: Requirement[], policy: InstallPolicy): Promise<void> {
  const path = policy.path ?? process.env.PATH ?? '';
  const missing = required.filter((r) => !onPath(r.command, path));
  if (!missing.length) return;
  const isRoot = policy.isRoot ?? process.getuid?.() === 0;
  if (policy.install === 'never' || !isRoot || !onPath('apt-get', path))
    throw new Error(installHint(missing));
  const pkgs = [...new Set(missing.map((r) => r.pkg))];
  policy.log(`installing ${pkgs.join(', ')} (apt-get; STACK_INSTALL=never to only be told)`);
  const env = { ...process.env, PATH: path, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    await run('apt-get', ['update', '-qq'], { env });
    await run('apt-get', ['install', '-y', '-qq', ...pkgs], { env, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const why = (e.stderr || e.message).trim().split('\n').at(-1);
    throw new Error(`apt-get install ${pkgs.join(' ')} failed (${why})`);
  }
  const still = missing.filter((r) => !onPath(r.command, path));
  if (still.length) throw new Error(`after apt-get install: ${installHint(still)}`);
}
