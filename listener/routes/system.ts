import { z } from 'zod';
import { unavailable } from '../errors.ts';
import { route } from '../http/route.ts';

export const systemRoutes = [
  route({
    method: 'get',
    path: '/api/health',
    tag: 'system',
    summary: 'Liveness: 200 while the process runs (HEAD too)',
    auth: false,
    responses: { 200: { description: 'alive', schema: z.object({ status: z.literal('ok') }) } },
    handle(ctx) {
      ctx.body = { status: 'ok' };
    },
  }),
  route({
    method: 'get',
    path: '/api/ready',
    tag: 'system',
    summary: 'Readiness: 200 when PostgreSQL and RabbitMQ are reachable, else 503',
    auth: false,
    responses: {
      200: { description: 'ready', schema: z.object({ status: z.literal('ok') }) },
      503: { description: '`unavailable`, `details` names the failing services' },
    },
    async handle(ctx) {
      const checks = Object.entries(ctx.deps.readiness);
      const results = await Promise.allSettled(checks.map(([, check]) => check()));
      const down = checks.filter((_, i) => results[i]?.status === 'rejected').map(([name]) => name);
      if (down.length) {
        throw unavailable(`not ready: ${down.join(', ')} unreachable`, { down });
      }
      ctx.body = { status: 'ok' };
    },
  }),
  route({
    method: 'get',
    path: '/api/server-key',
    tag: 'system',
    summary: 'The ed25519 public key that signs pushes',
    auth: false,
    responses: {
      200: {
        description: 'the key',
        schema: z.object({ algorithm: z.literal('ed25519'), public_key: z.string() }),
      },
    },
    handle(ctx) {
      ctx.body = {
        algorithm: 'ed25519',
        public_key: Buffer.from(ctx.deps.signingPublicKey).toString('base64'),
      };
    },
  }),
];
