import type { Logger } from '../../common/log.ts';
import type { Identity } from '../deps.ts';

/**
 * What a use case knows of the request that asks for it, never the HTTP exchange itself: the
 * request id (carried by the outbox rows it writes), the client's address (password budgets) and
 * the request's logger. A route passes its Koa `ctx.state`, which has these fields.
 */
export interface Caller {
  requestId: string;
  clientIp: string | null;
  log: Logger;
}

/** An authenticated caller: the device and user the request's token belongs to. */
export interface Actor extends Caller {
  auth: Identity;
}
