import { expect } from 'chai';
import type { Call } from '../helpers/http.ts';
import type { Device } from '../helpers/people.ts';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary event JSON and assert on it
export type Ev = any;

/** Every undelivered event of a device (paging until `has_more` is false), without acking. */
export async function pullAll(call: Call, d: Device): Promise<Ev[]> {
  const events: Ev[] = [];
  let after = 0;
  for (;;) {
    const res = await call('GET', `/api/messages?after=${after}&limit=500`, { token: d.token });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    events.push(...res.body.events);
    after = res.body.next_after;
    if (!res.body.has_more) return events;
  }
}

/** Pulls and acknowledges everything, returning what was pending. */
export async function drain(call: Call, d: Device): Promise<Ev[]> {
  const events = await pullAll(call, d);
  const last = events.at(-1);
  if (last) {
    const ack = await call('POST', '/api/messages/ack', { token: d.token, body: { up_to: last.seq } });
    expect(ack.status).to.equal(204);
  }
  return events;
}

/** The devices a message to the group must be encrypted for by `from` (all but the sending device). */
export async function groupTargets(call: Call, from: Device, groupId: string) {
  const res = await call('GET', `/api/groups/${groupId}`, { token: from.token });
  expect(res.status, JSON.stringify(res.body)).to.equal(200);
  return (res.body.members as { devices: { device_id: string; public_key: string }[] }[])
    .flatMap((m) => m.devices)
    .filter((d) => d.device_id !== from.deviceId);
}

export function ofType(events: Ev[], type: string): Ev[] {
  return events.filter((e) => e.type === type);
}
