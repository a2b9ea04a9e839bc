import { runLoad } from '../load.ts';
import { eventJson } from '../payload.ts';
import { type HttpTool, wrkPost } from './wrk.ts';

/**
 * Push-sized POSTs per second into one of the bench's sinks (they run in the bench process, as
 * during the phases), with wrk when given, else the Node load generator (undici pool).
 */
export async function sinkCeiling(opts: {
  origin: string;
  connections: number;
  durationMs: number;
  wrk: string | undefined;
  scratchDir: string;
}): Promise<{ perSec: number; errors: number; tool: HttpTool }> {
  const path = '/push/raw';
  if (opts.wrk) {
    const r = await wrkPost({
      wrk: opts.wrk,
      url: `${opts.origin}${path}`,
      body: eventJson(),
      connections: opts.connections,
      durationMs: opts.durationMs,
      scratchDir: opts.scratchDir,
    });
    return { ...r, tool: 'wrk' };
  }
  const r = await runLoad(
    {
      origin: opts.origin,
      requests: [
        { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: eventJson() },
      ],
      connections: opts.connections,
      recordMessageIds: false,
    },
    { kind: 'closed', concurrency: opts.connections, durationMs: opts.durationMs },
  );
  return { perSec: (r.ok * 1000) / (r.endedAt - r.startedAt), errors: r.errors, tool: 'node' };
}
