import { expect } from 'chai';
import { isPublicAddress, pushUrl } from '../../sender/ssrf.ts';

describe('SSRF: IPv4-compatible IPv6 (::/96)', () => {
  // Deprecated by RFC 4291, still routed to the embedded IPv4 address by some stacks: 127.0.0.1,
  // 10.0.0.1 or 169.254.169.254 hidden this way must not pass as "public unicast".
  const refused = ['::7f00:1', '::127.0.0.1', '::a00:1', '::a9fe:a9fe', '::8.8.8.8', '::0.0.0.2', '::ffff'];
  for (const ip of refused) {
    it(`when the address is ${ip}, then it is refused`, () => expect(isPublicAddress(ip)).to.equal(false));
  }

  it('when a URL spells it with a dotted quad, then the normalised host is refused too', () => {
    for (const spelling of ['http://[::127.0.0.1]/', 'http://[::169.254.169.254]/p', 'http://[0::a00:1]/']) {
      const host = pushUrl(spelling).hostname.replace(/^\[(.*)\]$/, '$1');
      expect(isPublicAddress(host), spelling).to.equal(false);
    }
  });

  it('when the address is ordinary public IPv6 just outside ::/96, then it is still allowed', () => {
    expect(isPublicAddress('2001:4860:4860::8888')).to.equal(true);
    expect(isPublicAddress('::1:0:0:1')).to.equal(false); // reserved ::/8 all the same
  });
});
