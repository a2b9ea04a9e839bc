import { z } from 'zod';
import { CODE_OF_STATUS } from '../middleware/errors.ts';
import { event as eventSchema } from './event-schemas.ts';
import type { AnyRoute, ResponseSpec } from './route.ts';
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
    // Answers may grow fields (docs/API.md#conventions: "answers may gain fields").
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

/** The `Error` schema narrowed to the codes one answer can carry. */
function errorSchemaFor(where: string, status: number, codes: readonly string[] | undefined): Json {
  const fallback = CODE_OF_STATUS[status];
  const list = codes ?? (fallback ? [fallback] : []);
  if (!list.length) throw new Error(`OpenAPI: ${where} ${status} needs \`errors\` (its error codes)`);
  const properties: Json = { error: { enum: [...list] } };
  if (status === 400) properties.details = INPUT_DETAILS;
  return { allOf: [ERROR_REF, { properties }] };
}

/** `details` of a 400 from input validation (route.ts `parse`): one entry per bad field. */
const INPUT_DETAILS = {
  type: 'array',
  description: 'present when input failed validation: one entry per bad field',
  items: {
    type: 'object',
    properties: {
      field: {
        type: 'string',
        description: '`body.…`, `query.…` or `params.…`, e.g. `body.envelopes.0.nonce`',
      },
      problem: { type: 'string' },
    },
    required: ['field', 'problem'],
  },
};

function answer(set: SchemaSet, where: string, status: number, spec: ResponseSpec): Json {
  let schema: Json | undefined;
  if (spec.schema) {
    schema = set.convert(spec.schema, 'output');
    // A specific body (409 device_mismatch) beside plain errors with other codes.
    if (spec.errors?.length) schema = { oneOf: [schema, errorSchemaFor(where, status, spec.errors)] };
  } else if (status >= 400) {
    schema = errorSchemaFor(where, status, spec.errors);
  }
  const content = spec.contentType
    ? { [spec.contentType]: { schema: { type: 'string', contentMediaType: spec.contentType } } }
    : schema && { 'application/json': { schema } };
  return { description: spec.description, ...(content && { content }) };
}

function operation(set: SchemaSet, r: AnyRoute): Json {
  const where = `${r.method.toUpperCase()} ${r.path}`;
  const responses: Json = {};
  for (const [status, spec] of Object.entries(r.responses)) {
    responses[status] = answer(set, where, Number(status), spec);
  }
  for (const [status, implied] of Object.entries(IMPLIED)) {
    if (responses[status] || !implied.when(r)) continue;
    responses[status] = answer(set, where, Number(status), { description: implied.description });
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

/**
 * The push (Standard Webhooks, ed25519) a sender POSTs to a device's `user_address`, as an
 * OpenAPI 3.1 webhook: what a push receiver implements. See docs/API.md#push-delivery.
 */
function pushWebhook(set: SchemaSet): Json {
  const header = (name: string, description: string, pattern?: string) => ({
    name,
    in: 'header',
    required: true,
    description,
    schema: { type: 'string', ...(pattern && { pattern }) },
  });
  return {
    post: {
      operationId: 'pushEvent',
      summary: "One event, POSTed to the device's `user_address` (path and query kept)",
      description:
        'Sent by a sender worker for every event of a device that has a push address; the body is the ' +
        'bare event JSON, byte for byte as pull and stream return it. Verify before trusting it: ' +
        'the ed25519 signature (public key from `GET /api/server-key`) over ' +
        '`{webhook-id}.{webhook-timestamp}.{raw body}`, a timestamp within your tolerance, and ' +
        '`webhook-id` equal to the event `id`. Delivery is at least once and unordered: dedupe by `id`, ' +
        'order by `seq`. Redirects are not followed; connect timeout 5 s, whole request 10 s ' +
        '(SENDER_CONNECT_TIMEOUT_MS, SENDER_TIMEOUT_MS); the answer body is discarded.',
      tags: ['push'],
      security: [],
      parameters: [
        header('webhook-id', 'the event `id` (the same on every retry of this event)'),
        header('webhook-timestamp', 'unix seconds when this attempt was signed', '^[0-9]+$'),
        header(
          'webhook-signature',
          '`v1a,` + base64 ed25519 signature of `{webhook-id}.{webhook-timestamp}.{body}`; a receiver ' +
            'should accept any of several space-separated signatures and ignore other versions',
          '^v1a,[A-Za-z0-9+/]{86}==( .+)?$',
        ),
        header('user-agent', '`messenger-sender/1`'),
      ],
      requestBody: {
        required: true,
        content: { 'application/json': { schema: set.convert(eventSchema, 'output') } },
      },
      responses: {
        '2XX': { description: 'delivered: the event is removed from the inbox and never pushed again' },
        '410': {
          description:
            "gone: the device's push address is cleared (no more pushes until it sets one or logs in again); the event stays for pull",
        },
        '429': {
          description:
            'retried after `Retry-After` (seconds or HTTP date) when given, else with backoff like any failure',
        },
        '503': { description: 'as 429' },
        default: {
          description:
            'any other status (3xx included), a timeout or a connection/TLS error: retried with exponential backoff and full jitter ' +
            '(1 s, 2 s, 4 s … at most 1 h between attempts) for 24 h after the event was queued; then it stays for pull',
        },
      },
    },
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
  const webhooks = { event: pushWebhook(set) };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Messenger API',
      version,
      description:
        'End-to-end encrypted messenger backend. Clients encrypt every message for every receiving device ' +
        '(nacl.box); the server stores and forwards opaque ciphertext. Every error is ' +
        '`{error, message, details?}`; each answer lists the `error` codes it can carry. Through nginx, ' +
        'any request may also get 502 `bad_gateway` or 504 `gateway_timeout` (retry). The reference with ' +
        'limits, events, push and stream is docs/API.md in the repository. Generated from the route ' +
        'schemas the listener validates with.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [
      {
        url: 'https://{host}:{port}',
        description: 'the nginx edge (`npm run stack`: https://127.0.0.1:8443, self-signed certificate)',
        variables: {
          host: { default: '127.0.0.1', description: 'HTTPS_HOST, or your domain' },
          port: { default: '8443', description: 'HTTPS_PORT' },
        },
      },
    ],
    tags: [
      ...[...new Set(routes.map((r) => r.tag))].map((name) => ({ name })),
      { name: 'push', description: 'what the server POSTs to a device push address' },
    ],
    paths,
    webhooks,
    components: {
      schemas: set.components,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'token from POST /api/login' },
      },
    },
  };
}
