import type { Middleware } from 'koa';
import type { AppState, Deps } from '../deps.ts';
import { AppError, isUnavailableError, payloadTooLarge, unavailable } from '../errors.ts';
import { isTransientConflict } from '../http/route.ts';

/**
 * The one `error` code each status carries unless a route names its own: what listener/errors.ts's
 * helpers and this middleware produce (docs/API.md#error-codes; the OpenAPI document uses it too).
 */
export const CODE_OF_STATUS: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  426: 'upgrade_required',
  429: 'rate_limited',
  503: 'unavailable',
};

/** Turns whatever was thrown into an AppError; unknown errors become a logged 500. */
function toAppError(err: unknown): AppError | null {
  if (err instanceof AppError) return err;
  if (isUnavailableError(err)) return unavailable();
  // Still colliding after the route's retries: the client may retry, it did nothing wrong.
  if (isTransientConflict(err)) return unavailable('the request collided with concurrent ones, retry');
  const e = err as {
    status?: number;
    statusCode?: number;
    expose?: boolean;
    type?: string;
    message?: string;
    code?: unknown;
  };
  // zlib/brotli: a body sent with Content-Encoding gzip/deflate/br that does not decompress.
  if (typeof e?.code === 'string' && /^(Z_[A-Z_]+|ERR__ERROR_\w+|ERR_BROTLI_\w+)$/.test(e.code)) {
    return new AppError(400, 'invalid_request', 'body does not match its Content-Encoding');
  }
  const status = e?.status ?? e?.statusCode;
  // koa-body / http-errors: malformed JSON, oversize bodies, bad encodings are the client's.
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 413) return payloadTooLarge();
    const message =
      e.type === 'entity.parse.failed' ? 'malformed JSON body' : e.expose ? String(e.message) : 'bad request';
    return new AppError(status, CODE_OF_STATUS[status] ?? 'invalid_request', message);
  }
  return null;
}

/** The one place errors are rendered: `{error, message, details?}`, never a stack trace. */
export function errorHandler(): Middleware<AppState, { deps: Deps }> {
  return async (ctx, next) => {
    try {
      await next();
      // The router leaves unmatched paths at 404 and wrong methods at 405/501 with no body.
      if (ctx.body === undefined || ctx.body === null) {
        if (ctx.status === 404)
          throw new AppError(404, 'not_found', `no route for ${ctx.method} ${ctx.path}`);
        if (ctx.status === 405 || ctx.status === 501) {
          throw new AppError(405, 'method_not_allowed', `${ctx.method} is not allowed on ${ctx.path}`);
        }
      }
    } catch (err) {
      const known = toAppError(err);
      const e = known ?? new AppError(500, 'internal_error', 'internal error');
      if (!known) ctx.state.log.error({ err }, 'unhandled error');
      else if (e.status === 503) ctx.state.log.warn({ err }, 'backing service unavailable');
      ctx.status = e.status;
      ctx.body = e.toJSON();
      for (const [k, v] of Object.entries(e.headers ?? {})) ctx.set(k, v);
    }
  };
}
