import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const NGINX_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../nginx');

/** Per-IP limits nginx enforces (see nginx/messenger.conf.template). */
export interface EdgeLimits {
  ratePerSecond: number;
  burst: number;
  authPerMinute: number;
  authBurst: number;
  streamConnections: number;
}

export interface NativeEdge {
  runDir: string;
  /** `host:port` nginx listens on with TLS. */
  listen: string;
  /** Listener ports on 127.0.0.1, in upstream order. */
  upstreamPorts: number[];
  certFile: string;
  keyFile: string;
  limits: EdgeLimits;
  nginxBin: string;
  /** nginx worker processes: a number or 'auto' (one per core); default 1. */
  workers?: number | 'auto';
}

/**
 * envsubst restricted to `${EDGE_*}`, as the nginx image does with NGINX_ENVSUBST_FILTER=^EDGE_:
 * nginx's own `$variables` are left alone, and a placeholder without a value is an error
 * instead of silently rendering an empty directive.
 */
export function renderTemplate(template: string, vars: Record<string, string>): string {
  return template.replace(/\$\{(EDGE_\w+)\}/g, (_, name: string) => {
    const value = vars[name];
    if (value === undefined) throw new Error(`nginx template: no value for \${${name}}`);
    return value;
  });
}

/** [major, minor, patch] of the nginx binary (`nginx -v` prints to stderr). */
export async function nginxVersion(bin: string): Promise<[number, number, number]> {
  const { stderr, stdout } = await run(bin, ['-v']);
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(`${stderr}${stdout}`);
  if (!m) throw new Error(`cannot read the version of ${bin}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** `http2 on;` exists from 1.25.1; older nginx takes `http2` as a listen parameter. */
export function http2Vars(version: [number, number, number]): {
  EDGE_LISTEN_HTTP2: string;
  EDGE_HTTP2: string;
} {
  const [a, b, c] = version;
  const modern = a > 1 || (a === 1 && (b > 25 || (b === 25 && c >= 1)));
  return modern
    ? { EDGE_LISTEN_HTTP2: '', EDGE_HTTP2: 'http2 on;' }
    : { EDGE_LISTEN_HTTP2: ' http2', EDGE_HTTP2: '' };
}

function limitVars(l: EdgeLimits): Record<string, string> {
  return {
    EDGE_RATE: `${l.ratePerSecond}r/s`,
    EDGE_BURST: String(l.burst),
    EDGE_AUTH_RATE: `${l.authPerMinute}r/m`,
    EDGE_AUTH_BURST: String(l.authBurst),
    EDGE_STREAM_CONNECTIONS: String(l.streamConnections),
  };
}

/** Explicit upstream lines: Debian's nginx (1.22) has no `resolve`, and the ports are known. */
export function nativeUpstream(ports: number[]): string {
  return `${ports.map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=5s;`).join('\n')}\n`;
}

/**
 * Writes `<runDir>/nginx/nginx.conf` (process layout) including the shared edge template and
 * the generated upstream; returns the path of the main config.
 */
export async function writeNativeConfig(edge: NativeEdge): Promise<string> {
  const runDir = resolve(edge.runDir);
  const confDir = join(runDir, 'nginx');
  await mkdir(join(runDir, 'logs'), { recursive: true });
  await mkdir(join(runDir, 'nginx-tmp'), { recursive: true });
  await mkdir(confDir, { recursive: true });
  const upstreamFile = join(confDir, 'upstream.conf');
  const vars: Record<string, string> = {
    ...limitVars(edge.limits),
    ...http2Vars(await nginxVersion(edge.nginxBin)),
    EDGE_LISTEN: edge.listen,
    EDGE_CERT: resolve(edge.certFile),
    EDGE_KEY: resolve(edge.keyFile),
    EDGE_UPSTREAM_INCLUDE: upstreamFile,
    EDGE_ACCESS_LOG: join(runDir, 'logs', 'nginx-access.log'),
    EDGE_RUN_DIR: runDir,
    EDGE_WORKERS: String(edge.workers ?? 1),
  };
  const shared = await readFile(join(NGINX_DIR, 'messenger.conf.template'), 'utf8');
  const main = await readFile(join(NGINX_DIR, 'native.conf.template'), 'utf8');
  await writeFile(upstreamFile, nativeUpstream(edge.upstreamPorts));
  await writeFile(join(confDir, 'messenger.conf'), renderTemplate(shared, vars));
  const mainFile = join(confDir, 'nginx.conf');
  await writeFile(mainFile, renderTemplate(main, vars));
  return mainFile;
}

/** Arguments that run nginx in the foreground with everything under the run directory. */
export function nginxArgs(runDir: string, mainFile: string): string[] {
  const dir = resolve(runDir);
  return [
    '-p',
    join(dir, 'nginx'),
    '-c',
    mainFile,
    '-e',
    join(dir, 'logs', 'nginx-error.log'),
    '-g',
    'daemon off;',
  ];
}

/** `nginx -t` on the rendered config: a broken template fails here with nginx's own message. */
export async function checkConfig(bin: string, runDir: string, mainFile: string): Promise<void> {
  const args = nginxArgs(runDir, mainFile).filter((a) => a !== '-g' && a !== 'daemon off;');
  try {
    await run(bin, [...args, '-t', '-q']);
  } catch (err) {
    const e = err as { stderr?: string };
    throw new Error(`nginx -t failed:\n${e.stderr ?? String(err)}`);
  }
}
