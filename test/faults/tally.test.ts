import { expect } from 'chai';
import type { Device } from '../helpers/people.ts';
import type { Outcome, SendRecord } from './driver.ts';
import { type Copy, type Received, tally } from './tally.ts';

/**
 * The fault suite's oracle must be able to fail: fed a loss, a double send, a duplicate push
 * or a delivered rejection, it counts them (what the fault run asserts to be zero).
 */
const device = (id: string) => ({ deviceId: id }) as Device;
const [a, b] = [device('a'), device('b')];

function record(cmid: string, outcome: Outcome, messageId?: string): SendRecord {
  return {
    cmid,
    phase: 'p',
    from: device('s'),
    receivers: [a, b],
    patient: true,
    attempts: [{ at: 0, end: 1, status: outcome === 'acked' ? 201 : 503 }],
    outcome,
    ...(messageId ? { messageId } : {}),
  };
}

function holding(entries: [Device, Partial<Copy> & { eventId: string; cmid: string }][]): Received {
  const received: Received = new Map();
  for (const [d, c] of entries) {
    const byEvent = received.get(d.deviceId) ?? new Map<string, Copy>();
    byEvent.set(c.eventId, { messageId: 'm1', pushes: 1, pulled: false, ...c });
    received.set(d.deviceId, byEvent);
  }
  return received;
}

describe('faults: the tally that judges a fault run', () => {
  it('when every device holds an acknowledged message once, then it is delivered with nothing to report', () => {
    const t = tally(
      [record('c1', 'acked', 'm1')],
      holding([
        [a, { eventId: 'e1', cmid: 'c1' }],
        [b, { eventId: 'e2', cmid: 'c1' }],
      ]),
      ['p'],
    );
    expect(t.total).to.include({ sent: 1, acked: 1, delivered: 1, lost: 0, duplicates: 0, doubled: 0 });
    expect(t.problems).to.deep.equal([]);
  });

  it('when a device misses an acknowledged message, then it is lost', () => {
    const t = tally([record('c1', 'acked', 'm1')], holding([[a, { eventId: 'e1', cmid: 'c1' }]]), ['p']);
    expect(t.total).to.include({ acked: 1, delivered: 0, lost: 1 });
  });

  it('when an event is pushed twice and also left in the inbox, then two duplicate copies are counted', () => {
    const t = tally(
      [record('c1', 'acked', 'm1')],
      holding([
        [a, { eventId: 'e1', cmid: 'c1', pushes: 2, pulled: true }],
        [b, { eventId: 'e2', cmid: 'c1' }],
      ]),
      ['p'],
    );
    expect(t.total).to.include({ delivered: 1, duplicates: 2, lost: 0 });
  });

  it('when one client_message_id arrives as two events or under another message id, then it is reported', () => {
    const t = tally(
      [record('c1', 'acked', 'm1')],
      holding([
        [a, { eventId: 'e1', cmid: 'c1' }],
        [a, { eventId: 'e3', cmid: 'c1', messageId: 'm2' }],
        [b, { eventId: 'e2', cmid: 'c1' }],
      ]),
      ['p'],
    );
    expect(t.total.doubled).to.equal(1);
    expect(t.problems.join('\n'))
      .to.match(/2 different events/)
      .and.match(/another message id/);
  });

  it('when a rejected send is delivered anyway, or an unknown message arrives, then it is reported', () => {
    const t = tally(
      [record('c1', 'rejected')],
      holding([
        [a, { eventId: 'e1', cmid: 'c1' }],
        [b, { eventId: 'e9', cmid: 'stranger' }],
      ]),
      ['p'],
    );
    expect(t.total).to.include({ rejected: 1, rejectedDelivered: 1 });
    expect(t.problems.join('\n')).to.match(/unknown message stranger/);
  });
});
