import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { buildOpenApi } from '../listener/http/openapi.ts';
import { routes } from '../listener/routes/index.ts';

/** Writes the OpenAPI document (the one served at GET /api/openapi.json) to a file. */
const out = process.argv[2] ?? 'docs/openapi.json';
const doc = buildOpenApi(routes);
await mkdir(dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify(doc, null, 2)}\n`);
console.log(`wrote ${out}: ${Object.keys(doc.paths as object).length} paths`);
