import ipaddr from 'ipaddr.js';

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

function normalize(ip: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  if (!ipaddr.isValid(ip)) return null;
  const addr = ipaddr.parse(ip);
  return addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()
    ? (addr as ipaddr.IPv6).toIPv4Address()
    : addr;
}

/**
 * The client address: the socket peer, unless the peer is a trusted proxy, in which case
 * X-Forwarded-For is walked from the right past trusted hops (a client can prepend anything).
 */
export function clientIpResolver(
  trusted: string[],
): (peer: string | undefined, xff: string) => string | null {
  const cidrs: Cidr[] = trusted.map((t) =>
    t.includes('/') ? ipaddr.parseCIDR(t) : ipaddr.parseCIDR(`${t}/${t.includes(':') ? 128 : 32}`),
  );
  const isTrusted = (a: ipaddr.IPv4 | ipaddr.IPv6) =>
    cidrs.some(([range, bits]) => a.kind() === range.kind() && a.match(range, bits));
  // Every request names the same few addresses (nginx's, then its clients'): parsed once each.
  const seen = new Map<string, { ip: string; trusted: boolean } | null>();
  const classify = (text: string) => {
    let c = seen.get(text);
    if (c === undefined) {
      const addr = normalize(text);
      c = addr ? { ip: addr.toString(), trusted: isTrusted(addr) } : null;
      if (seen.size >= 4096) seen.clear();
      seen.set(text, c);
    }
    return c;
  };
  return (peer, xff) => {
    const peerAddr = peer ? classify(peer) : null;
    if (!peerAddr) return peer ?? null;
    if (!peerAddr.trusted || !xff) return peerAddr.ip;
    const hops = xff.split(',').map((h) => h.trim());
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = classify(hops[i] ?? '');
      if (!hop) return peerAddr.ip;
      if (!hop.trusted || i === 0) return hop.ip;
    }
    return peerAddr.ip;
  };
}
