import { parse as parseQuery } from 'node:querystring';
import Router from '@koa/router';
import type { AnyRoute } from '../../listener/http/route.ts';

export interface FuzzRequest {
  method: string;
  /** Path as sent (percent-encoded), without the query. */
  path: string;
  query: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  /** The request carries a valid token of a fuzzed device. */
  validToken: boolean;
}

const PARSED_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
// What koa-body hands to its JSON parser (koa-body 7 `jsonTypes`).
const JSON_TYPES = new Set([
  'application/json',
  'application/json-patch+json',
  'application/vnd.api+json',
  'application/csp-report',
  'application/reports+json',
]);
const STRICT_JSON = /^[ \t\n\r]*(\[|\{)/;
const MAX_JSON = 1024 * 1024;

function hasNul(value: unknown): boolean {
  const stack = [value];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return true;
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k.includes('\u0000')) return true;
        stack.push(x);
      }
    }
  }
  return false;
}

const fails = (schema: AnyRoute['body'], value: unknown) =>
  schema !== undefined && (hasNul(value) || !schema.safeParse(value).success);

/**
 * Predicts, from the route list alone, whether the listener must refuse a request: no
 * route or method, no valid token, a body/query/params its schema rejects, a body koa-body
 * cannot parse or a non-JSON body. `maybe` means it could be accepted (and change data).
 */
export function oracle(routes: AnyRoute[]) {
  const router = new Router();
  routes.forEach((r, i) => {
    router.register(r.path, [r.method.toUpperCase()], [async () => {}], { name: String(i) });
  });
  return (req: FuzzRequest): { verdict: 'rejected' | 'maybe'; route: AnyRoute | undefined } => {
    const path = req.path.length > 1 ? req.path.replace(/\/+$/, '') || '/' : req.path;
    // OPTIONS on a known path answers 200 with Allow (@koa/router allowedMethods), touching nothing.
    if (req.method === 'OPTIONS') {
      return { verdict: router.match(path, 'GET').path.length ? 'maybe' : 'rejected', route: undefined };
    }
    const layer = router.match(path, req.method).pathAndMethod[0];
    const route = layer ? routes[Number(layer.name)] : undefined;
    const rejected = { verdict: 'rejected' as const, route };
    if (!layer || !route) return rejected;
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    const size = req.body?.length ?? 0;
    let parsed: unknown;
    if (PARSED_METHODS.has(req.method) && JSON_TYPES.has(type)) {
      // Unknown encodings are refused (415); random bytes may well be valid brotli or deflate.
      const encoding = req.headers['content-encoding'];
      if (encoding)
        return ['gzip', 'deflate', 'br', 'identity'].includes(encoding)
          ? { verdict: 'maybe', route }
          : rejected;
      if (size > MAX_JSON) return rejected;
      const text = req.body?.toString('utf8') ?? '';
      if (text) {
        if (!STRICT_JSON.test(text)) return rejected;
        try {
          parsed = JSON.parse(text);
        } catch {
          return rejected;
        }
      } else parsed = {};
    }
    if (route.auth && !req.validToken) return rejected;
    if (route.params && fails(route.params, layer.params(path, layer.captures(path)))) return rejected;
    if (route.query && fails(route.query, { ...parseQuery(req.query) })) return rejected;
    if (route.body) {
      if (size > 0 && type !== 'application/json') return rejected;
      if (fails(route.body, parsed ?? {})) return rejected;
    }
    return { verdict: 'maybe', route };
  };
}
