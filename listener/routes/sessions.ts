import { z } from 'zod';
import { route } from '../http/route.ts';
import * as s from '../http/schemas.ts';
import { login, logout } from '../use-cases/sessions.ts';

export const sessionRoutes = [
  route({
    method: 'post',
    path: '/api/login',
    tag: 'devices',
    summary: 'Open a session on a new device, or resume one of your devices with `device_id`',
    auth: false,
    body: z.strictObject({
      username: s.username,
      password: z.string().max(256),
      public_key: s.publicKey,
      device_id: s.ref.optional(),
      device_name: s.deviceName.optional(),
      user_address: s.httpUrl.optional(),
    }),
    responses: {
      200: {
        description: 'session opened',
        schema: z.object({ user_id: s.id, device_id: s.id, token: z.string(), expires_at: s.timestamp }),
      },
      401: {
        description: '`invalid_credentials` (unknown user or wrong password alike)',
        errors: ['invalid_credentials'],
      },
      404: { description: "`device_id` is not one of this user's devices" },
      409: {
        description:
          '`device_key_mismatch`: the device has another public key; `too_many_devices`: a new device would pass `DEVICES_PER_USER_MAX` (resume one with `device_id` or remove one)',
        errors: ['device_key_mismatch', 'too_many_devices'],
      },
      429: { description: 'too many failed logins for this username' },
    },
    async handle(ctx, { body }) {
      ctx.body = await login(ctx.deps, ctx.state, {
        username: body.username,
        password: body.password,
        publicKey: body.public_key,
        deviceId: body.device_id,
        deviceName: body.device_name,
        userAddress: body.user_address,
        userAgent: ctx.get('user-agent').slice(0, 512) || null,
      });
    },
  }),
  route({
    method: 'post',
    path: '/api/logout',
    tag: 'devices',
    summary: 'End this session and stop pushes; the device keeps receiving into its inbox',
    auth: true,
    responses: { 204: { description: 'logged out' } },
    async handle(ctx) {
      await logout(ctx.deps, ctx.state);
      ctx.status = 204;
    },
  }),
];
