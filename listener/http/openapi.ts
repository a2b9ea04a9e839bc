import { z } from 'zod';
import type { AnyRoute } from './route.ts';
import { error as errorSchema } from './schemas.ts';

type Json = Record<string, unknown>;

/** Errors every route may answer besides its own, when they apply (see route.ts). */
const IMPLIED: Record<number, { when: (r: AnyRoute) => boolean; description: string }> = {
  400: {
    when: (r) => !!(r.body || r.rawBody || r.query || r.params),
    description: '`invalid_request`: `details` lists `{field, problem}` for each bad input field',
  },
  401: { when: (r) => r.auth, description: '`unauthorized`: missing, invalid or expired bearer token' },
  413: { when: (r) => !!r.body, description: '`payload_too_large`: JSON body over 1 MiB' },
  415: { when: (r) => !!r.body, description: '`unsupported_media_type`: send application/json' },
  429: { when: () => true, description: '`rate_limited`: slow down; see `Retry-After`' },
  503: {
    when: () => true,
    description: '`unavailable`: a backing service is down; retry after `Retry-After`',
  },
};

const ERROR_REF = { $ref: '#/components/schemas/Error' };

/** `/api/users/:username` → `/api/users/{username}`. */
export function openApiPath(koaPath: string): string {
  return koaPath.replace(/:(\w+)/g, '{$1}');
}

/** Rewrites zod's `#/$defs/X` references to components and drops `additionalProperties: false` in answers. */
function rewrite(node: unknown, output: boolean): unknown {
  if (Array.isArray(node)) return node.map((n) => rewrite(n, output));
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === '$schema') continue;
    // Answers may grow fields (API.md: lists are wrapped "so fields can be added later").
    if (output && k === 'additionalProperties' && v === false) continue;
    if (k === '$ref' && typeof v === 'string') out[k] = v.replace('#/$defs/', '#/components/schemas/');
    else out[k] = rewrite(v, output);
  }
  return out;
}

/** Converts zod schemas to JSON Schema 2020-12, collecting `.meta({id})` schemas as components. */
class SchemaSet {
  readonly components: Record<string, unknown> = {};

  convert(schema: z.ZodType, io: 'input' | 'output'): Json {
    const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Json;
    const defs = (json.$defs ?? {}) as Record<string, unknown>;
    delete json.$defs;
    for (const [id, def] of Object.entries(defs)) {
      const converted = rewrite(def, io === 'output');
      const prior = this.components[id];
      if (prior !== undefined && JSON.stringify(prior) !== JSON.stringify(converted)) {
        throw new Error(`OpenAPI: two different schemas share the id ${id}`);
      }
      this.components[id] = converted;
    }
    return rewrite(json, io === 'output') as Json;
  }
}

function parameters(set: SchemaSet, schema: z.ZodType | undefined, where: 'path' | 'query'): Json[] {
  if (!schema) return [];
  const json = set.convert(schema, 'input');
  const props = (json.properties ?? {}) as Record<string, Json>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    ...(typeof s.description === 'string' && { description: s.description }),
    schema: s,
  }));
}

function operation(set: SchemaSet, r: AnyRoute): Json {
  const responses: Json = {};
  for (const [status, spec] of Object.entries(r.responses)) {
    const code = Number(status);
    const schema = spec.schema ? set.convert(spec.schema, 'output') : code >= 400 ? ERROR_REF : undefined;
    const content = spec.contentType
      ? { [spec.contentType]: { schema: { type: 'string', contentMediaType: spec.contentType } } }
      : schema && { 'application/json': { schema } };
    responses[status] = { description: spec.description, ...(content && { content }) };
  }
  for (const [status, implied] of Object.entries(IMPLIED)) {
    if (responses[status] || !implied.when(r)) continue;
    responses[status] = {
      description: implied.description,
      content: { 'application/json': { schema: ERROR_REF } },
    };
  }
  let requestBody: Json | undefined;
  if (r.rawBody) {
    const { contentType, description } = r.rawBody;
    requestBody = {
      required: true,
      description,
      content: { [contentType]: { schema: { type: 'string', contentMediaType: contentType } } },
    };
  } else if (r.body) {
    const schema = set.convert(r.body, 'input');
    requestBody = {
      required: Array.isArray(schema.required) && schema.required.length > 0,
      content: { 'application/json': { schema } },
    };
  }
  const params = [...parameters(set, r.params, 'path'), ...parameters(set, r.query, 'query')];
  return {
    operationId: `${r.method}${openApiPath(r.path)
      .replace(/^\/api/, '')
      .replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
    summary: r.summary,
    tags: [r.tag],
    security: r.auth ? [{ bearer: [] }] : [],
    ...(params.length && { parameters: params }),
    ...(requestBody && { requestBody }),
    responses,
  };
}

/** The OpenAPI 3.1 document of `routes`: the same zod schemas the listener validates with. */
export function buildOpenApi(routes: AnyRoute[], version = '0.1.0'): Json {
  const set = new SchemaSet();
  set.convert(errorSchema, 'output');
  const paths: Record<string, Json> = {};
  for (const r of routes) {
    const p = openApiPath(r.path);
    paths[p] ??= {};
    (paths[p] as Json)[r.method] = operation(set, r);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Messenger API',
      version,
      description:
        'End-to-end encrypted messenger backend. Clients encrypt every message for every receiving device ' +
        '(nacl.box); the server stores and forwards opaque ciphertext. Every error is ' +
        '`{error, message, details?}`. Generated from the route schemas the listener validates with.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    tags: [...new Set(routes.map((r) => r.tag))].map((name) => ({ name })),
    paths,
    components: {
      schemas: set.components,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'token from POST /api/login' },
      },
    },
  };
}
