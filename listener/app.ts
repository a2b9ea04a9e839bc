import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import Koa from 'koa';
import { HttpMethodEnum, koaBody } from 'koa-body';
import { LazyChild } from '../common/log.ts';
import type { AppState, Deps } from './deps.ts';
import { mount } from './http/route.ts';
import { clientIpResolver } from './middleware/client-ip.ts';
import { errorHandler } from './middleware/errors.ts';
import { routes } from './routes/index.ts';

const REQUEST_ID = /^[\w.-]{1,128}$/;

export function createApp(deps: Deps): Koa<AppState, { deps: Deps }> {
  const app = new Koa<AppState, { deps: Deps }>();
  // Errors Koa sees outside the middleware chain (a client aborting an upload, a response stream
  // failing): into the log as JSON, instead of Koa's default stack trace on stderr.
  app.on('error', (err: unknown, ctx?: { state?: Partial<AppState> }) => {
    (ctx?.state?.log ?? deps.log).warn({ err }, 'request stream error');
  });
  app.context.deps = deps;
  const clientIp = clientIpResolver(deps.config.TRUSTED_PROXIES);

  // Request id (nginx sets one; direct callers get a fresh one), client ip and a per-request logger.
  app.use(async (ctx, next) => {
    const given = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(given) ? given : randomUUID();
    ctx.set('X-Request-Id', requestId);
    // Which listener answered (behind nginx's least_conn): for operators and the edge tests.
    ctx.set('X-Served-By', deps.config.INSTANCE_ID);
    ctx.state.requestId = requestId;
    ctx.state.clientIp = clientIp(ctx.req.socket.remoteAddress, ctx.get('x-forwarded-for'));
    const log = new LazyChild(deps.log, { req_id: requestId });
    ctx.state.logFields = log;
    Object.defineProperty(ctx.state, 'log', { get: () => log.log, enumerable: true });
    const started = performance.now();
    try {
      await next();
    } finally {
      const elapsed = performance.now() - started;
      const ms = Math.round(elapsed * 10) / 10;
      log.debug({ method: ctx.method, path: ctx.path, status: ctx.status, ms }, 'request');
      // The route template (`/api/users/:username`), never the raw path: bounded label values.
      const route = (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      deps.metrics.httpDuration.observe({ method: ctx.method, route, status: ctx.status }, elapsed / 1000);
    }
  });
  app.use(errorHandler());
  // Older clients use a trailing slash (`/api/users/`): route both spellings the same.
  app.use(async (ctx, next) => {
    if (ctx.path.length > 1 && ctx.path.endsWith('/')) ctx.path = ctx.path.replace(/\/+$/, '') || '/';
    await next();
  });
  app.use(
    koaBody({
      json: true,
      jsonStrict: true,
      jsonLimit: '1mb',
      text: false,
      urlencoded: false,
      multipart: false,
      // DELETE carries a body too (`DELETE /api/users/me {password}`).
      parsedMethods: [HttpMethodEnum.POST, HttpMethodEnum.PUT, HttpMethodEnum.PATCH, HttpMethodEnum.DELETE],
    }),
  );

  // Case-sensitive like nginx's locations: `/api/Login` must not reach the login route around the
  // edge's stricter zone for `/api/login`, so any other spelling of any path is 404.
  const router = new Router<AppState, { deps: Deps }>({ sensitive: true });
  mount(router, routes);
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
