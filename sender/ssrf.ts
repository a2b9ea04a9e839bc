import dns from 'node:dns';
import net, { type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { buildConnector } from 'undici';

/** A push address that is not http(s) or resolves to a refused range. Never retried. */
export class BlockedAddressError extends Error {
  readonly code = 'EBLOCKEDADDRESS';
  constructor(what: string) {
    super(`push address refused: ${what}`);
    this.name = 'BlockedAddressError';
  }
}

/**
 * True only for globally routable unicast addresses. Loopback, private, link-local, CGNAT,
 * unique-local, multicast, unspecified, broadcast, reserved, documentation, NAT64/6to4/Teredo
 * (which embed IPv4 addresses) are all something else to ipaddr.js; IPv4-mapped IPv6
 * (`::ffff:127.0.0.1`) is unwrapped first so it is judged as the IPv4 address it is.
 */
export function isPublicAddress(ip: string): boolean {
  if (!ipaddr.isValid(ip)) return false;
  return ipaddr.process(ip).range() === 'unicast';
}

/** Only http(s) URLs may be pushed to; returns the parsed URL or throws BlockedAddressError. */
export function pushUrl(address: string): URL {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new BlockedAddressError('not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BlockedAddressError('not http(s)');
  return url;
}

/**
 * dns.lookup that refuses the whole name when any of its addresses is not public, so a name
 * with one public and one internal record cannot be used to reach the internal one.
 */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0);
    const refused = addresses.find((a) => !isPublicAddress(a.address));
    const first = addresses[0];
    if (refused || !first) {
      return callback(
        new BlockedAddressError(`${hostname} resolves to ${refused?.address ?? 'nothing'}`),
        '',
        0,
      );
    }
    // biome-ignore lint/suspicious/noExplicitAny: Node's callback is overloaded on `options.all`
    if (options.all) return (callback as any)(null, addresses);
    callback(null, first.address, first.family);
  });
};

/**
 * An undici connector that checks the IP it actually connects to: names go through
 * guardedLookup at connect time (no DNS-rebinding gap between check and use) and IP literals
 * — already normalised by WHATWG URL parsing, so `http://2130706433/` arrives as 127.0.0.1 —
 * are checked directly. `allowPrivate` (SENDER_ALLOW_PRIVATE_ADDRESSES) switches it off.
 */
export function guardedConnector(opts: {
  timeoutMs: number;
  allowPrivate: boolean;
}): buildConnector.connector {
  const connect = buildConnector({
    timeout: opts.timeoutMs,
    ...(opts.allowPrivate ? {} : { lookup: guardedLookup }),
  });
  if (opts.allowPrivate) return connect;
  return (options, callback) => {
    const host = options.hostname.replace(/^\[(.*)\]$/, '$1');
    if (net.isIP(host) && !isPublicAddress(host)) {
      callback(new BlockedAddressError(host), null);
      return;
    }
    connect(options, callback);
  };
}
