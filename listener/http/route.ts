import type Router from '@koa/router';
import type { ParameterizedContext } from 'koa';
import type { z } from 'zod';
import { badRequest, unsupportedMediaType } from '../../common/errors.ts';
import type { AppState, Deps } from '../deps.ts';
import { authenticate } from '../middleware/auth.ts';

export type Ctx = ParameterizedContext<AppState, { deps: Deps }>;
export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

type Schema = z.ZodType | undefined;
type Out<S extends Schema> = S extends z.ZodType ? z.output<S> : undefined;

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
}

/**
 * One route: its HTTP shape (the single source for validation and the OpenAPI document)
 * and its handler, which only ever sees validated, typed input.
 */
export interface RouteDef<B extends Schema, Q extends Schema, P extends Schema> {
  method: Method;
  /** Koa path, e.g. `/api/users/:username`. */
  path: string;
  summary: string;
  tag: string;
  auth: boolean;
  body?: B;
  query?: Q;
  params?: P;
  /** Success and route-specific error answers; common errors (400/401/429/503) are implied. */
  responses: Record<number, ResponseSpec>;
  handle(ctx: Ctx, input: { body: Out<B>; query: Out<Q>; params: Out<P> }): Promise<void> | void;
}

export type AnyRoute = RouteDef<Schema, Schema, Schema>;

export function route<
  B extends Schema = undefined,
  Q extends Schema = undefined,
  P extends Schema = undefined,
>(def: RouteDef<B, Q, P>): AnyRoute {
  return def as unknown as AnyRoute;
}

function parse<S extends Schema>(schema: S, value: unknown, where: string): Out<S> {
  if (!schema) return undefined as Out<S>;
  const result = schema.safeParse(value);
  if (result.success) return result.data as Out<S>;
  const details = result.error.issues.map((i) => ({
    field: [where, ...i.path.map(String)].join('.'),
    problem: i.message,
  }));
  throw badRequest(`invalid ${where}: ${details.map((d) => d.field).join(', ')}`, details);
}

export function mount(router: Router<AppState, { deps: Deps }>, routes: AnyRoute[]): void {
  for (const r of routes) {
    router[r.method](r.path, async (ctx) => {
      if (r.auth) await authenticate(ctx as Ctx);
      let body: unknown;
      if (r.body) {
        const hasBody = Number(ctx.get('content-length') || 0) > 0 || ctx.get('transfer-encoding') !== '';
        if (hasBody && !ctx.is('application/json')) throw unsupportedMediaType('send application/json');
        body = (ctx.request as { body?: unknown }).body ?? {};
      }
      const input = {
        body: parse(r.body, body, 'body'),
        query: parse(r.query, ctx.query, 'query'),
        params: parse(r.params, ctx.params, 'params'),
      };
      await r.handle(ctx as Ctx, input);
    });
  }
}
