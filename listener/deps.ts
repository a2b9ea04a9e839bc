import type { Db } from '../common/db/index.ts';
import type { LazyChild, Logger } from '../common/log.ts';
import type { ListenerMetrics } from '../common/metrics.ts';
import type { AuthCache } from './auth-cache.ts';
import type { ListenerConfig } from './config.ts';
import type { OutboxEntry } from './db/inbox.ts';
import type { FileStore } from './files/store.ts';
import type { SendBatcher } from './messaging/send-batcher.ts';

export interface Identity {
  userId: string;
  username: string;
  deviceId: string;
  publicKey: string;
  tokenHash: Buffer;
}

export interface AppState {
  auth: Identity;
  clientIp: string | null;
  /** X-Request-Id of this request (given by nginx or generated). */
  requestId: string;
  /** This request's logger, made on first use… */
  readonly log: Logger;
  /** …with the fields added here until then (the authenticated device). */
  logFields: LazyChild;
}

/** Everything a listener needs, built by main.ts (or a test) and handed to createApp. */
export interface Deps {
  config: ListenerConfig;
  db: Db;
  /** Where file bytes live (uploads, downloads, the file GC); their metadata stays in `db`. */
  files: FileStore;
  log: Logger;
  /** Public half of the push-signing key, served at GET /api/server-key. */
  signingPublicKey: Uint8Array;
  /** Readiness probes of backing services; each throws while its service is unreachable. */
  readiness: Record<string, () => Promise<void>>;
  /** Called with the outbox rows a transaction wrote, once it committed: publishes them at once. */
  outboxWritten(rows: OutboxEntry[]): void;
  /** Sessions and device directories read recently, invalidated by broadcast (see AuthCache). */
  cache: AuthCache;
  /** Stores direct sends by group commit. */
  sends: SendBatcher;
  /** This listener's Prometheus registry and the instruments routes and the stream update. */
  metrics: ListenerMetrics;
}
