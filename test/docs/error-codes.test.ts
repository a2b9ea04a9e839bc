import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect } from 'chai';
import { buildOpenApi } from '../../listener/http/openapi.ts';
import { routes } from '../../listener/routes/index.ts';

/**
 * docs/API.md promises "the full list of error codes with their statuses". The list is prose, so
 * this keeps it honest: every code the listener, Node's parser hook or nginx can answer with is in
 * its table, with the status the OpenAPI document gives it, and the table names no code the code
 * never produces.
 */

const ROOT = new URL('../..', import.meta.url).pathname;

function filesUnder(dir: string, ext: RegExp): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && ext.test(e.name))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** `status code` pairs of the Error codes table in docs/API.md. */
function documentedPairs(): Set<string> {
  const md = readFileSync(join(ROOT, 'docs/API.md'), 'utf8');
  const section = md.slice(md.indexOf('### Error codes'), md.indexOf('## Limits and quotas'));
  const pairs = new Set<string>();
  for (const m of section.matchAll(/^\| (\d{3}) \| `([a-z_]+)` \|/gm)) pairs.add(`${m[1]} ${m[2]}`);
  return pairs;
}

/** Codes written in the source where errors are made: AppError and its helpers, the parser hook, stream refusals, nginx. */
function codesInSource(): Map<string, string> {
  const patterns = [
    /new AppError\(\s*\d{3},\s*'(\w+)'/g,
    /\bconflict\(\s*'(\w+)'/g,
    /\b(?:forbidden|notFound|unauthorized)\(\s*(?:'[^']*'|`[^`]*`),\s*'(\w+)'\s*\)/g,
    /\bcode = '(\w+)'/g, // defaults of the helpers in listener/errors.ts
    /^\s+\d{3}: '(\w+)',$/gm, // status → code maps
    /\[\s*\d{3},\s*'[^']*',\s*'(\w+)'/g, // listener/http/client-errors.ts
    /refuse\(\s*socket,\s*\d{3},\s*'(\w+)'/g, // listener/stream/server.ts
    /"error":"(\w+)"/g, // nginx templates
  ];
  const files = [
    ...filesUnder('listener', /\.ts$/).filter((f) => f !== 'listener/http/openapi.ts'),
    ...filesUnder('nginx', /\.(template|conf)$/),
  ];
  const found = new Map<string, string>();
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const re of patterns) for (const m of text.matchAll(re)) if (m[1]) found.set(m[1], file);
  }
  return found;
}

// biome-ignore lint/suspicious/noExplicitAny: the OpenAPI document is walked as plain JSON
type Doc = any;

/** `status code` pairs of every error answer in the OpenAPI document. */
function openApiPairs(): Set<string> {
  const doc: Doc = JSON.parse(JSON.stringify(buildOpenApi(routes)));
  const codesOf = (schema: Doc): string[] => {
    if (!schema) return [];
    if (schema.oneOf) return schema.oneOf.flatMap(codesOf);
    if (schema.allOf) return schema.allOf.flatMap(codesOf);
    if (schema.$ref) return codesOf(doc.components.schemas[schema.$ref.split('/').pop()]);
    const prop = schema.properties?.error;
    return prop?.enum ?? (prop?.const === undefined ? [] : [prop.const]);
  };
  const pairs = new Set<string>();
  for (const ops of Object.values<Doc>(doc.paths))
    for (const op of Object.values<Doc>(ops))
      for (const [status, answer] of Object.entries<Doc>(op.responses))
        if (Number(status) >= 400)
          for (const code of codesOf(answer.content?.['application/json']?.schema))
            pairs.add(`${status} ${code}`);
  return pairs;
}

describe('docs/API.md error codes', () => {
  it('when the source makes an error code, then the table in docs/API.md lists it', () => {
    const source = codesInSource();
    // The scan must keep finding codes from each kind of place, or it would pass on nothing.
    expect([...source.keys()]).to.include.members([
      'invalid_request',
      'device_mismatch',
      'wrong_password',
      'upgrade_required',
      'headers_too_large',
      'internal_error',
      'method_not_allowed',
      'bad_gateway',
      'gateway_timeout',
    ]);
    const documented = new Set([...documentedPairs()].map((p) => p.split(' ')[1]));
    const missing = [...source].filter(([code]) => !documented.has(code)).map(([c, f]) => `${c} (${f})`);
    expect(missing, 'codes missing from docs/API.md#error-codes').to.deep.equal([]);
  });

  it('when the OpenAPI document gives an answer a code, then the table lists that status with it', () => {
    const table = documentedPairs();
    expect(table.size).to.be.greaterThan(15);
    expect([...openApiPairs()].filter((p) => !table.has(p))).to.deep.equal([]);
  });

  it('when the table lists a code, then the source makes it (no stale rows)', () => {
    const source = codesInSource();
    expect(
      [...documentedPairs()].map((p) => p.split(' ')[1]).filter((c) => c && !source.has(c)),
    ).to.deep.equal([]);
  });
});
