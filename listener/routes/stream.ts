import { z } from 'zod';
import { onlineUsernames } from '../../common/db/presence.ts';
import { AppError } from '../../common/errors.ts';
import { route } from '../http/route.ts';
import * as s from '../http/schemas.ts';

export const MAX_PRESENCE_USERS = 100;

const usernameList = z
  .string()
  .transform((v) => v.split(','))
  .pipe(z.array(s.username).min(1).max(MAX_PRESENCE_USERS, `at most ${MAX_PRESENCE_USERS} usernames`));

export const streamRoutes = [
  route({
    method: 'get',
    path: '/api/stream',
    tag: 'stream',
    summary:
      'Live stream (WebSocket). Authenticate with `Authorization: Bearer` on the upgrade (missing or bad → 401, ' +
      'no upgrade) or, without the header, with a first frame `{"type":"auth","token"}` within 5 s (else close 4401). ' +
      'The server sends `{"type":"event","event":{…}}` for this device, backlog first, then live; the client sends ' +
      '`{"type":"ack","up_to":seq}`. Bad frames close the socket with 1008 (1003 binary, 1009 over 64 KiB) and a ' +
      'reason; a client that does not read is closed with 4008; unanswered pings drop the socket.',
    auth: false,
    responses: {
      101: { description: 'switching protocols to WebSocket' },
      400: { description: '`invalid_request`: an `Upgrade` header other than `websocket`' },
      401: {
        description:
          '`unauthorized`: an `Authorization` header with a missing, invalid or expired token; no upgrade',
      },
      426: { description: '`upgrade_required`: a plain request without `Upgrade: websocket`' },
    },
    handle() {
      throw new AppError(426, 'upgrade_required', 'connect with a WebSocket client', {
        headers: { Upgrade: 'websocket' },
      });
    },
  }),
  route({
    method: 'get',
    path: '/api/presence',
    tag: 'stream',
    summary:
      'Which of these users (comma-separated, at most 100) have a device with an open live stream. ' +
      'Unknown usernames are simply not online.',
    auth: true,
    query: z.strictObject({ users: usernameList }),
    responses: {
      200: {
        description: 'the online subset, in the order asked',
        schema: z.object({ online: z.array(z.string()) }).meta({ id: 'Presence' }),
      },
    },
    async handle(ctx, { query }) {
      const asked = [...new Set(query.users)];
      const online = await onlineUsernames(ctx.deps.db, asked, ctx.deps.config.PRESENCE_EXPIRY_MS);
      ctx.body = { online: asked.filter((u) => online.has(u)) };
    },
  }),
];
