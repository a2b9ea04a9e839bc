import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureCert } from '../../stack/index.ts';
import { checkConfig, nginxArgs, writeNativeConfig } from '../../stack/nginx.ts';
import { runLoad } from '../load.ts';
import { freePort, waitForPort } from '../net.ts';
import { spawnWithFirstLine, stop } from '../procs.ts';
import { type HttpTool, wrkPost } from './wrk.ts';

const UPSTREAM = fileURLToPath(new URL('./upstream.ts', import.meta.url));

/**
 * nginx TLS proxy req/s to a trivial Node upstream: a throwaway nginx rendered from the project's
 * own templates (same TLS, access log and proxy settings as the stack, limits opened up), wrk
 * (when given) or else the Node load generator POSTing send-sized bodies over `connections`
 * keep-alive HTTPS connections.
 */
export async function nginxCeiling(opts: {
  runDir: string;
  connections: number;
  durationMs: number;
  body: string;
  /** The wrk binary; without it the Node load generator measures. */
  wrk: string | undefined;
}): Promise<{ perSec: number; errors: number; tool: HttpTool }> {
  const runDir = join(opts.runDir, 'raw-nginx');
  const { child: upstream, line } = await spawnWithFirstLine(process.execPath, ['--import', 'tsx', UPSTREAM]);
  let nginx: ChildProcess | undefined;
  try {
    const certFile = join(runDir, 'tls', 'certificate.pem');
    const keyFile = join(runDir, 'tls', 'private_key.pem');
    await ensureCert(certFile, keyFile);
    const port = await freePort();
    const mainFile = await writeNativeConfig({
      runDir,
      listen: `127.0.0.1:${port}`,
      upstreamPorts: [Number(line)],
      certFile,
      keyFile,
      limits: {
        ratePerSecond: 100_000,
        burst: 100_000,
        authPerMinute: 100_000,
        authBurst: 100_000,
        streamConnections: 10_000,
      },
      nginxBin: 'nginx',
    });
    await checkConfig('nginx', runDir, mainFile);
    nginx = spawn('nginx', nginxArgs(runDir, mainFile), { stdio: 'inherit' });
    await waitForPort(port, 10_000);
    if (opts.wrk) {
      const r = await wrkPost({
        wrk: opts.wrk,
        url: `https://127.0.0.1:${port}/api/messages`,
        body: opts.body,
        connections: opts.connections,
        durationMs: opts.durationMs,
        scratchDir: runDir,
      });
      return { ...r, tool: 'wrk' };
    }
    const r = await runLoad(
      {
        origin: `https://127.0.0.1:${port}`,
        requests: [
          {
            method: 'POST',
            path: '/api/messages',
            headers: { 'content-type': 'application/json' },
            body: opts.body,
          },
        ],
        connections: opts.connections,
        recordMessageIds: false,
      },
      { kind: 'closed', concurrency: opts.connections, durationMs: opts.durationMs },
    );
    return { perSec: (r.ok * 1000) / (r.endedAt - r.startedAt), errors: r.errors, tool: 'node' };
  } finally {
    if (nginx) await stop(nginx);
    await stop(upstream);
  }
}
