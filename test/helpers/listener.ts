import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ensureSigningKey, loadSigningKey } from '../../common/crypto/signing-key.ts';
import { createDb } from '../../common/db/index.ts';
import { pgFileStore } from '../../common/files/store.ts';
import { createLogger } from '../../common/log.ts';
import { listenerMetrics } from '../../common/metrics.ts';
import { createApp } from '../../listener/app.ts';
import { AuthCache } from '../../listener/auth-cache.ts';
import type { Deps } from '../../listener/deps.ts';
import { answerClientErrorsAsJson } from '../../listener/http/client-errors.ts';
import { sendBatcher } from '../../listener/messaging/send-batcher.ts';
import { attachStream, type LiveStream } from '../../listener/stream/server.ts';
import { testConfig } from './env.ts';
import { type Call, client } from './http.ts';

export interface TestListener {
  url: string;
  deps: Deps;
  /** The live stream (GET /api/stream) attached to this listener's server. */
  stream: LiveStream;
  close(): Promise<void>;
}

/** A real listener (real PostgreSQL) on an ephemeral port, in this process. */
export async function startListener(
  overrides: Record<string, string> = {},
  extra: Partial<Pick<Deps, 'readiness' | 'outboxWritten'>> = {},
): Promise<TestListener> {
  const config = testConfig(overrides);
  await ensureSigningKey(config.SIGNING_KEY_FILE);
  const key = await loadSigningKey(config.SIGNING_KEY_FILE);
  const db = createDb(config.DATABASE_URL, 5);
  const outboxWritten = extra.outboxWritten ?? (() => {});
  const deps: Deps = {
    config,
    db,
    files: pgFileStore(db),
    log: createLogger(config.LOG_LEVEL, 'listener-test'),
    signingPublicKey: key.publicKey,
    readiness: {
      postgres: async () => {
        await db.raw('select 1');
      },
    },
    metrics: listenerMetrics(db),
    ...extra,
    outboxWritten,
    cache: new AuthCache(config.AUTH_CACHE_TTL_MS),
    sends: sendBatcher({
      db,
      log: createLogger(config.LOG_LEVEL, 'listener-test'),
      ttlDays: config.INBOX_TTL_DAYS,
      inboxMax: config.INBOX_MAX_EVENTS,
      max: config.SEND_BATCH_MAX,
      committed: (rows) => deps.outboxWritten(rows),
    }),
  };
  const server = createApp(deps).listen(0, '127.0.0.1');
  answerClientErrorsAsJson(server);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const stream = attachStream(server, deps);
  deps.metrics.openStreams = () => stream.size;
  return {
    url: `http://127.0.0.1:${port}`,
    deps,
    stream,
    async close() {
      await stream.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await db.destroy();
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
