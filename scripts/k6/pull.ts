/**
 * Send and drain by pull: `k6 run scripts/k6/pull.ts`
 *   env BASE_URL (https://127.0.0.1:8443), RATE (sends/s, 50), DURATION (30s), USERS (20).
 * Devices have no push address, so everything sent stays in the inbox until pulled: one
 * scenario sends at a constant arrival rate, the other has one VU per user paging
 * `GET /api/messages` and acking with `POST /api/messages/ack` until its inbox is empty.
 */
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter } from 'k6/metrics';
import type { Options } from 'k6/options';
import { authHeaders, BASE_URL, type BenchUser, createUsers, postJson, sendOne, USERS } from './lib.ts';

const received = new Counter('events_received');
const duration = __ENV.DURATION ?? '30s';

export const options: Options = {
  insecureSkipTLSVerify: true,
  setupTimeout: '5m',
  scenarios: {
    send: {
      executor: 'constant-arrival-rate',
      exec: 'send',
      rate: Number(__ENV.RATE ?? 50),
      timeUnit: '1s',
      duration,
      preAllocatedVUs: Number(__ENV.VUS ?? 50),
      maxVUs: Number(__ENV.MAX_VUS ?? 200),
    },
    pull: {
      executor: 'constant-vus',
      exec: 'pull',
      vus: USERS,
      duration,
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:pull}': ['p(99)<500'],
    checks: ['rate>0.99'],
  },
};

export function setup(): { users: BenchUser[] } {
  return { users: createUsers('k6p') };
}

export function send(data: { users: BenchUser[] }): void {
  sendOne(data.users);
}

/** Each pull VU owns one user's device: page after its cursor, ack what it saw, pause when empty. */
let cursor = 0;

export function pull(data: { users: BenchUser[] }): void {
  const me = data.users[(exec.vu.idInTest - 1) % data.users.length] as BenchUser;
  const res = http.get(`${BASE_URL}/api/messages?after=${cursor}&limit=100`, {
    headers: authHeaders(me.token),
    tags: { name: 'pull' },
  });
  if (!check(res, { 'pulled (200)': (r) => r.status === 200 })) return;
  const page = res.json() as { events: unknown[]; next_after: number; has_more: boolean };
  received.add(page.events.length);
  if (page.events.length) {
    const ack = postJson('/api/messages/ack', { up_to: page.next_after }, me.token);
    check(ack, { 'acked (204)': (r) => r.status === 204 });
    cursor = page.next_after;
  }
  if (!page.has_more) sleep(0.2);
}
