import type { Call } from '../helpers/http.ts';
import { type Device, envelopesFor, keyOf, login, register } from '../helpers/people.ts';

/** A user with one device whose push address is `address`, and a sender to write to it. */
export async function pair(call: Call, address: string | null): Promise<{ from: Device; to: Device }> {
  const from = await login(call, await register(call));
  const to = await login(call, await register(call), address ? { user_address: address } : {});
  return { from, to };
}

export async function send(call: Call, from: Device, to: Device, text: string): Promise<string> {
  const res = await call('POST', '/api/messages', {
    token: from.token,
    body: { to: to.username, envelopes: envelopesFor(from, [keyOf(to)], text) },
  });
  if (res.status !== 201) throw new Error(`send failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.message_id;
}
