import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;

let built: Promise<void> | undefined;

/**
 * `npm run build`, once per test run: the CLI (dist/messenger-cli.cjs) and `npm run stack`'s
 * listeners and senders run the compiled dist/, which must be the code in the tree.
 */
export function buildOnce(): Promise<void> {
  built ??= run('npm', ['run', '-s', 'build'], { cwd: ROOT }).then(() => {});
  return built;
}
