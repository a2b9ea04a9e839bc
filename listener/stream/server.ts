import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { Broker } from '../../common/queue/broker.ts';
import { beatStreams, liveTokenHashes, staleStreamUsers } from '../db/presence.ts';
import type { Deps } from '../deps.ts';
import { isUnavailableError } from '../errors.ts';
import { every } from '../jobs/periodic.ts';
import { bearerToken, identify } from '../middleware/auth.ts';
import { clientIpResolver } from '../middleware/client-ip.ts';
import { PresenceAnnouncer } from '../presence/announcer.ts';
import { PresenceHub } from '../presence/hub.ts';
import { StreamConnection } from './connection.ts';
import { CLOSE, MAX_CLIENT_FRAME_BYTES } from './frames.ts';
import { LiveBus } from './live-bus.ts';

const STREAM_PATH = '/api/stream';

export interface LiveStream {
  /** Authenticated sockets on this listener. */
  readonly size: number;
  /** Stops accepting, closes every socket (1001) and removes their presence rows. */
  close(): Promise<void>;
}

/** Answers an upgrade we refuse with the API's JSON error body instead of switching protocols. */
function refuse(socket: Duplex, status: number, error: string, message: string): void {
  const body = JSON.stringify({ error, message });
  const extra = status === 503 ? 'Retry-After: 1\r\n' : '';
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * The live stream on this listener's HTTP server: WebSocket upgrades of GET /api/stream, wake-ups
 * from RabbitMQ (see LiveBus), ping/pong dead-peer detection and the presence heartbeat. Kept out
 * of createApp: Koa never sees upgrade requests.
 */
export function attachStream(server: Server, deps: Deps, broker: Broker): LiveStream {
  const { config, db } = deps;
  const log = deps.log.child({ component: 'stream' });
  const clientIp = clientIpResolver(config.TRUSTED_PROXIES);
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_CLIENT_FRAME_BYTES,
    perMessageDeflate: false,
  });
  const all = new Set<StreamConnection>();
  const byDevice = new Map<string, Set<StreamConnection>>();
  let closing = false;

  const bus: LiveBus = new LiveBus({
    broker,
    log,
    onWake: (deviceId) => {
      for (const c of byDevice.get(deviceId) ?? []) c.wake();
    },
    onConnected: () => {
      deps.cache.setLive(true);
      for (const c of all) c.wake();
      void hub.resync();
    },
    onPresence: (change) => {
      hub.changed(change).catch((err: unknown) => log.warn({ err }, 'presence change not passed on'));
    },
    onDisconnected: () => deps.cache.setLive(false),
    onInvalidate: (userId) => {
      deps.cache.invalidate(userId);
      void endRevoked(userId).catch((err: unknown) => log.warn({ err }, 'revoked streams not checked'));
    },
  });
  deps.cache.announce = (userId) =>
    bus.announce(userId).catch((err: unknown) => {
      // Listeners still subscribed keep what they cached until AUTH_CACHE_TTL_MS.
      log.warn({ err, user_id: userId }, 'cache invalidation not broadcast');
    });
  const hub = new PresenceHub({
    db,
    expiryMs: config.PRESENCE_EXPIRY_MS,
    bindings: bus,
    metrics: deps.metrics.presence,
    log,
  });
  const announcer = new PresenceAnnouncer({
    db,
    config,
    publish: (change) => bus.publishPresence(change),
    metrics: deps.metrics.presence,
    log,
  });
  bus.start();

  /** A user's sessions changed somewhere: close at once this user's streams whose session ended. */
  async function endRevoked(userId: string): Promise<void> {
    const mine = [...all].filter((c) => c.open && c.identity?.userId === userId);
    if (mine.length) await endEnded(mine);
  }

  /**
   * Logging out, deleting the device or the account ends the session: end its streams too. Open
   * streams keep their sessions alive (sliding expiry, as requests do).
   */
  async function endEnded(conns: StreamConnection[]): Promise<void> {
    const live = await liveTokenHashes(
      db,
      conns.map((c) => c.identity?.tokenHash ?? Buffer.alloc(0)),
      config.SESSION_TTL_DAYS,
    );
    for (const c of conns) {
      if (!live.has(c.identity?.tokenHash.toString('hex') ?? ''))
        c.close(CLOSE.unauthorized, 'session ended');
    }
  }

  const hooks = {
    async opened(conn: StreamConnection) {
      const id = conn.identity;
      if (!id) return;
      const set = byDevice.get(id.deviceId) ?? new Set();
      byDevice.set(id.deviceId, set.add(conn));
      const bound = bus.add(id.deviceId);
      await beatStreams(db, config.INSTANCE_ID, [
        { streamId: conn.id, deviceId: id.deviceId, userId: id.userId },
      ]);
      // Closed while the row was being written: the close hook's delete may have run first.
      void announcer.settle(id.userId, conn.open ? undefined : { streamId: conn.id });
      await bound;
    },
    async subscribe(conn: StreamConnection, usernames: string[]) {
      await hub.subscribe(conn, usernames);
    },
    closed(conn: StreamConnection) {
      all.delete(conn);
      const id = conn.identity;
      if (!id) return;
      const set = byDevice.get(id.deviceId);
      set?.delete(conn);
      if (set?.size === 0) byDevice.delete(id.deviceId);
      bus.remove(id.deviceId);
      hub.drop(conn);
      // If this fails the row stops beating and expires like a killed listener's. While the
      // listener shuts down, close() settles every stream itself.
      if (!closing) void announcer.settle(id.userId, { streamId: conn.id });
    },
  };

  async function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => {}); // a peer resetting mid-handshake is not our error
    const path = (req.url ?? '/').split('?')[0]?.replace(/\/+$/, '') ?? '';
    if (path !== STREAM_PATH) return refuse(socket, 404, 'not_found', `no upgrade on ${path || '/'}`);
    if (req.method !== 'GET') return refuse(socket, 405, 'method_not_allowed', 'use GET');
    if (req.headers.upgrade?.toLowerCase() !== 'websocket')
      return refuse(socket, 400, 'invalid_request', 'only WebSocket upgrades are accepted');
    if (closing) return refuse(socket, 503, 'unavailable', 'shutting down, reconnect');
    const client = {
      ip: clientIp(req.socket.remoteAddress, String(req.headers['x-forwarded-for'] ?? '')),
      userAgent: req.headers['user-agent'] ?? null,
      // nginx's X-Request-Id (as listener/app.ts takes it): the socket's log lines carry it as req_id.
      requestId: /^[\w.-]{1,128}$/.test(String(req.headers['x-request-id'] ?? ''))
        ? String(req.headers['x-request-id'])
        : randomUUID(),
    };
    let identity = null;
    if (req.headers.authorization !== undefined) {
      try {
        identity = await identify(deps, bearerToken(req.headers.authorization), client);
      } catch (err) {
        if (isUnavailableError(err))
          return refuse(socket, 503, 'unavailable', 'a backing service is unavailable');
        log.error({ err }, 'stream upgrade failed');
        return refuse(socket, 500, 'internal_error', 'internal error');
      }
      if (!identity) return refuse(socket, 401, 'unauthorized', 'missing, invalid or expired token');
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new StreamConnection(ws, deps, hooks, client);
      if (closing) return conn.close(CLOSE.goingAway, 'server shutting down');
      all.add(conn);
      conn.start(identity);
    });
  }
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    onUpgrade(req, socket, head).catch((err: unknown) => {
      log.error({ err }, 'stream upgrade failed');
      socket.destroy();
    });
  };
  server.on('upgrade', upgrade);

  const pinger = setInterval(() => {
    for (const c of all) c.ping();
  }, config.STREAM_PING_INTERVAL_MS);
  pinger.unref();

  const heartbeat = every(config.PRESENCE_HEARTBEAT_MS, 'presence', log, async () => {
    const open = [...all].filter((c) => c.identity && c.open);
    const returned = await beatStreams(
      db,
      config.INSTANCE_ID,
      open.map((c) => ({
        streamId: c.id,
        deviceId: c.identity?.deviceId ?? '',
        userId: c.identity?.userId ?? '',
      })),
    );
    await Promise.all(returned.map((u) => announcer.settle(u)));
    await announcer.sweep(await staleStreamUsers(db, config.PRESENCE_EXPIRY_MS));
    await endEnded(open);
  });

  return {
    get size() {
      return [...all].filter((c) => c.identity).length;
    },
    async close() {
      closing = true;
      server.off('upgrade', upgrade);
      clearInterval(pinger);
      const streams = [...all].flatMap((c) =>
        c.identity ? [{ userId: c.identity.userId, streamId: c.id }] : [],
      );
      for (const c of all) c.close(CLOSE.goingAway, 'server shutting down');
      await heartbeat.stop();
      // Removes their rows and starts their grace (or announces them offline); another
      // listener's sweep ends the grace.
      await Promise.all(streams.map((s) => announcer.settle(s.userId, { streamId: s.streamId })));
      await announcer.close();
      await bus.close();
      wss.close();
    },
  };
}
