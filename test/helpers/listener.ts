import type { AddressInfo } from 'node:net';
import { ensureSigningKey } from '../../common/crypto/signing-key.ts';
import { createLogger } from '../../common/log.ts';
import { buildListener } from '../../listener/build.ts';
import type { Deps } from '../../listener/deps.ts';
import type { LiveStream } from '../../listener/stream/server.ts';
import { testConfig } from './env.ts';
import { type Call, client } from './http.ts';

export interface TestListener {
  url: string;
  deps: Deps;
  /** The live stream (GET /api/stream) attached to this listener's server. */
  stream: LiveStream;
  close(): Promise<void>;
}

/**
 * A real listener (real PostgreSQL) on an ephemeral port, in this process, built as
 * listener/main.ts builds one. Without `relay`, committed outbox rows stay in the outbox;
 * `readiness` replaces the real probes (a test of GET /api/ready).
 */
export async function startListener(
  overrides: Record<string, string> = {},
  opts: { relay?: boolean; readiness?: Deps['readiness'] } = {},
): Promise<TestListener> {
  const config = testConfig({ DATABASE_POOL_MAX: '5', ...overrides });
  await ensureSigningKey(config.SIGNING_KEY_FILE);
  const log = createLogger(config.LOG_LEVEL, 'listener-test');
  const listener = await buildListener(config, { log, relay: opts.relay ?? false });
  if (opts.readiness) listener.deps.readiness = opts.readiness;
  const { port } = listener.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    deps: listener.deps,
    stream: listener.stream,
    async close() {
      const closed = listener.close();
      // Requests a test left hanging would hold the close up: end them (streams got their 1001).
      listener.server.closeAllConnections();
      await closed;
    },
  };
}

/**
 * The in-process listener of a describe block and a client for it: started in `before`, closed
 * in `after`. Read `t.listener` / `t.call` inside hooks and tests (they are set once `before` ran).
 */
export function useListener(overrides: Record<string, string> = {}): { listener: TestListener; call: Call } {
  const t = {} as { listener: TestListener; call: Call };
  before(async () => {
    t.listener = await startListener(overrides);
    t.call = client(t.listener.url);
  });
  after(() => t.listener?.close());
  return t;
}
