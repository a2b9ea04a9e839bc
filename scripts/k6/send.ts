/**
 * Sends at a constant arrival rate: `k6 run scripts/k6/send.ts`
 *   env BASE_URL (https://127.0.0.1:8443), RATE (sends/s, 50), DURATION (30s), USERS (20),
 *   VUS (preallocated, 50), PUSH_URL (optional push address for every device).
 * Setup registers and logs in USERS users; each iteration sends one 1 KiB message to the next
 * user in the ring. The stack must allow the rate (RATE_LIMIT_PER_SECOND / _BURST at nginx).
 */
import type { Options } from 'k6/options';
import { type BenchUser, createUsers, sendOne } from './lib.ts';

export const options: Options = {
  insecureSkipTLSVerify: true,
  setupTimeout: '5m',
  scenarios: {
    send: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE ?? 50),
      timeUnit: '1s',
      duration: __ENV.DURATION ?? '30s',
      preAllocatedVUs: Number(__ENV.VUS ?? 50),
      maxVUs: Number(__ENV.MAX_VUS ?? 200),
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:send}': ['p(99)<500'],
    checks: ['rate>0.99'],
  },
};

export function setup(): { users: BenchUser[] } {
  return { users: createUsers('k6s', __ENV.PUSH_URL) };
}

export default function (data: { users: BenchUser[] }): void {
  sendOne(data.users);
}
