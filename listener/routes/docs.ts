import { z } from 'zod';
import { buildOpenApi } from '../http/openapi.ts';
import { type AnyRoute, route } from '../http/route.ts';

/**
 * GET /api/openapi.json, generated from `all()` (the listener's routes, this one included) on
 * first use and cached for the life of the process.
 */
export function docsRoutes(all: () => AnyRoute[]): AnyRoute[] {
  let doc: string | undefined;
  return [
    route({
      method: 'get',
      path: '/api/openapi.json',
      tag: 'system',
      summary: 'This API as an OpenAPI 3.1 document',
      auth: false,
      responses: { 200: { description: 'the document', schema: z.record(z.string(), z.unknown()) } },
      handle(ctx) {
        doc ??= JSON.stringify(buildOpenApi(all()));
        ctx.type = 'application/json';
        ctx.body = doc;
      },
    }),
  ];
}
