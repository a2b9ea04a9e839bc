import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { delimiter, join } from 'node:path';

/** Which program measured a raw HTTP ceiling. */
export type HttpTool = 'wrk' | 'node';

/** The wrk binary on PATH, or undefined (Debian: `apt-get install -y wrk`). */
export async function findWrk(): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const bin = join(dir, 'wrk');
    try {
      await access(bin, constants.X_OK);
      return bin;
    } catch {}
  }
  return undefined;
}

export interface WrkResult {
  /** 2xx/3xx answers per second. */
  perSec: number;
  /** Non-2xx/3xx answers and socket errors. */
  errors: number;
}

/**
 * POSTs `body` to `url` (127.0.0.1 only) with wrk for `durationMs` over `connections` keep-alive
 * connections, one wrk thread per core at most. The request is set by a Lua script: wrk's command
 * line cannot carry a body. wrk is killed by its PID if it outlives its duration by 30 s.
 */
export async function wrkPost(opts: {
  wrk: string;
  url: string;
  body: string;
  connections: number;
  durationMs: number;
  scratchDir: string;
}): Promise<WrkResult> {
  if (new URL(opts.url).hostname !== '127.0.0.1')
    throw new Error(`wrk targets 127.0.0.1 only, not ${opts.url}`);
  await mkdir(opts.scratchDir, { recursive: true });
  const script = join(opts.scratchDir, 'post.lua');
  await writeFile(
    script,
    [
      'wrk.method = "POST"',
      'wrk.headers["Content-Type"] = "application/json"',
      `wrk.body = ${luaLongString(opts.body)}`,
      '',
    ].join('\n'),
  );
  const seconds = Math.max(1, Math.round(opts.durationMs / 1000));
  const threads = Math.max(1, Math.min(cpus().length, opts.connections));
  const args = ['-t', String(threads), '-c', String(opts.connections), '-d', `${seconds}s`];
  const out = await run(
    opts.wrk,
    [...args, '--timeout', '5s', '-s', script, opts.url],
    seconds * 1000 + 30_000,
  );
  const requests = /(\d+) requests in ([\d.]+)(m?s)/.exec(out);
  if (!requests) throw new Error(`wrk printed no summary:\n${out}`);
  const elapsed = Number(requests[2]) / (requests[3] === 'ms' ? 1000 : 1);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket ? socket.slice(1).reduce((n, v) => n + Number(v), 0) : 0;
  return { perSec: (Number(requests[1]) - non2xx) / elapsed, errors: non2xx + socketErrors };
}

/** A Lua long-bracket literal: no escapes, with a level of `=` the text does not close early. */
function luaLongString(text: string): string {
  let eq = '';
  while (text.includes(`]${eq}]`)) eq += '=';
  return `[${eq}[${text}]${eq}]`;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const guard = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(guard);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(guard);
      if (code === 0) resolve(out);
      else reject(new Error(`wrk exited (${signal ?? code}):\n${out}`));
    });
  });
}
