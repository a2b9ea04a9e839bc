import type Router from '@koa/router';
import type { ParameterizedContext } from 'koa';
import type { z } from 'zod';
import type { AppState, Deps } from '../deps.ts';
import { badRequest, unsupportedMediaType } from '../errors.ts';
import { authenticate } from '../middleware/auth.ts';

export type Ctx = ParameterizedContext<AppState, { deps: Deps }>;
type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

type Schema = z.ZodType | undefined;
type Out<S extends Schema> = S extends z.ZodType ? z.output<S> : undefined;

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  /** A non-JSON answer (e.g. `application/octet-stream`), for the OpenAPI document. */
  contentType?: string;
  /**
   * The `error` codes this (error) answer can carry, for the document's per-answer enum. Defaults
   * to the one code of its status (`not_found` for 404…, see openapi.ts); statuses with several
   * codes (409) must list them. With a `schema`, the codes of the plain `Error` answers beside it.
   */
  errors?: readonly string[];
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
  /** A raw (non-JSON) body the handler streams itself: documented only, never parsed. */
  rawBody?: { contentType: string; description: string };
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

/**
 * Path of the first string (or key) holding U+0000, which PostgreSQL text cannot store (it
 * failed the insert with a 500). Iterative, so a deeply nested body cannot overflow the stack.
 */
function findNul(value: unknown): string | null {
  interface Node {
    v: unknown;
    key: string;
    parent: Node | null;
  }
  const pathOf = (n: Node): string => {
    const keys: string[] = [];
    for (let at: Node | null = n; at?.parent; at = at.parent) keys.push(at.key);
    return keys.reverse().join('.').slice(0, 200);
  };
  const stack: Node[] = [{ v: value, key: '', parent: null }];
  for (let n = stack.pop(); n; n = stack.pop()) {
    const { v } = n;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return pathOf(n);
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push({ v: v[i], key: String(i), parent: n });
    } else if (
      v !== null &&
      typeof v === 'object' &&
      [Object.prototype, null].includes(Object.getPrototypeOf(v))
    ) {
      for (const [k, x] of Object.entries(v)) {
        if (k.includes('\u0000')) return pathOf(n);
        stack.push({ v: x, key: k, parent: n });
      }
    }
  }
  return null;
}

function parse<S extends Schema>(schema: S, value: unknown, where: string): Out<S> {
  if (!schema) return undefined as Out<S>;
  const nul = findNul(value);
  if (nul !== null) {
    const field = [where, nul].filter(Boolean).join('.');
    throw badRequest(`invalid ${where}: ${field}`, [{ field, problem: 'must not contain NUL characters' }]);
  }
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
      // A deadlock victim's transaction was rolled back, so the handler may run again; not when
      // it streams the raw body itself (an upload), which cannot be read twice.
      const replayable =
        (ctx.request as { body?: unknown }).body !== undefined ||
        (Number(ctx.get('content-length') || 0) === 0 && !ctx.get('transfer-encoding'));
      for (let attempt = 1; ; attempt++) {
        try {
          await r.handle(ctx as Ctx, input);
          return;
        } catch (err) {
          if (!(replayable && attempt < MAX_ATTEMPTS && isTransientConflict(err))) throw err;
          ctx.state.log.warn(
            { attempt, code: (err as { code?: string }).code },
            'transaction conflict, retrying',
          );
        }
      }
    });
  }
}

const MAX_ATTEMPTS = 3;

/** PostgreSQL deadlock victim or serialization failure: nothing was written, trying again is safe. */
export function isTransientConflict(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
}
