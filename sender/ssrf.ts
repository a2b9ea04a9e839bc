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
 * Refused on top of everything ipaddr.js does not call `unicast` (loopback, private, link-local,
 * CGNAT, unique-local, multicast, unspecified, broadcast, reserved, documentation, NAT64/6to4/
 * Teredo, which embed IPv4 addresses). ipaddr.js calls these plain unicast, yet no public
 * receiver lives there and some stacks route them to the IPv4 address they embed.
 */
const REFUSED_RANGES: readonly [string, string][] = [
  // IPv4-compatible IPv6 (`::a.b.c.d`, `::7f00:1` = 127.0.0.1), deprecated by RFC 4291 …
  ['::/96', 'IPv4-compatible IPv6'],
  // … and the rest of the IETF-reserved 0000::/8 it sits in (IPv4-mapped is unwrapped first).
  ['::/8', 'reserved by IETF (RFC 4291)'],
];
const refusedCidrs = REFUSED_RANGES.map(([cidr]) => ipaddr.parseCIDR(cidr));

/**
 * True only for globally routable unicast addresses: ipaddr.js's `unicast` outside
 * REFUSED_RANGES. IPv4-mapped IPv6 (`::ffff:127.0.0.1`) is unwrapped first so it is judged as the
 * IPv4 address it is.
 */
export function isPublicAddress(ip: string): boolean {
  if (!ipaddr.isValid(ip)) return false;
  // ipaddr.js reads `::8.8.8.8` as if it were `::ffff:8.8.8.8` (IPv4-mapped) and unwraps it:
  // judge the canonical hex spelling (`::808:808`) that URL parsing and DNS answers use.
  let canonical = ip;
  if (net.isIPv6(ip)) {
    try {
      canonical = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
    } catch {
      return false; // a zone id (`fe80::1%eth0`) or the like: link-local anyway
    }
  }
  const addr = ipaddr.process(canonical);
  if (addr.range() !== 'unicast') return false;
  return !refusedCidrs.some(([net, bits]) => addr.kind() === net.kind() && addr.match(net, bits));
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
const guardedLookup: LookupFunction = (hostname, options, callback) => {
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
