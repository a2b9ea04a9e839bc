import {
  clearLoginFailures,
  failureBudget,
  failureSource,
  loginLockedFor,
  recordLoginFailure,
} from '../db/login-failures.ts';
import type { Deps } from '../deps.ts';
import { rateLimited } from '../errors.ts';

/**
 * A password check under the failure budget of (username, the client's place), shared by login
 * and by the account changes that ask for the password: 429 while over the budget; a wrong
 * password counts against it, a right one clears this place's count. Says whether `verify` passed.
 */
export async function withinPasswordBudget(
  deps: Deps,
  clientIp: string | null,
  username: string,
  verify: () => Promise<boolean>,
  lockedMessage: string,
): Promise<boolean> {
  const { db, config } = deps;
  const budget = failureBudget(config);
  const source = failureSource(clientIp);
  const wait = await loginLockedFor(db, username, source, budget);
  if (wait) throw rateLimited(wait, lockedMessage);
  if (!(await verify())) {
    await recordLoginFailure(db, username, source, budget);
    return false;
  }
  await clearLoginFailures(db, username, source);
  return true;
}
