import { expect } from 'chai';
import { eventFrame, parseClientFrame } from '../../listener/stream/frames.ts';

describe('stream client frames (table)', () => {
  const text = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
  const cases: [string, Buffer, boolean, unknown][] = [
    [
      'auth',
      text({ type: 'auth', token: 'abc' }),
      false,
      { ok: true, frame: { type: 'auth', token: 'abc' } },
    ],
    ['ack', text({ type: 'ack', up_to: 7 }), false, { ok: true, frame: { type: 'ack', up_to: 7 } }],
    ['ack 0', text({ type: 'ack', up_to: 0 }), false, { ok: true, frame: { type: 'ack', up_to: 0 } }],
    [
      'binary',
      text({ type: 'ack', up_to: 1 }),
      true,
      { ok: false, code: 1003, reason: 'binary frames are not accepted' },
    ],
    ['not JSON', text('{'), false, { ok: false, code: 1008, reason: 'frame is not valid JSON' }],
    [
      'unknown type',
      text({ type: 'hello' }),
      false,
      { ok: false, code: 1008, reason: 'invalid frame: type' },
    ],
    ['no type', text({ up_to: 1 }), false, { ok: false, code: 1008, reason: 'invalid frame: type' }],
    ['null', text('null'), false, { ok: false, code: 1008, reason: 'invalid frame: type' }],
    [
      'fractional seq',
      text({ type: 'ack', up_to: 1.5 }),
      false,
      { ok: false, code: 1008, reason: 'invalid frame: up_to' },
    ],
    [
      'seq as string',
      text({ type: 'ack', up_to: '1' }),
      false,
      { ok: false, code: 1008, reason: 'invalid frame: up_to' },
    ],
    [
      'unsafe seq',
      text('{"type":"ack","up_to":9007199254740993}'),
      false,
      { ok: false, code: 1008, reason: 'invalid frame: up_to' },
    ],
    [
      'empty token',
      text({ type: 'auth', token: '' }),
      false,
      { ok: false, code: 1008, reason: 'invalid frame: token' },
    ],
    [
      'extra key',
      text({ type: 'ack', up_to: 1, more: 1 }),
      false,
      { ok: false, code: 1008, reason: 'invalid frame: unknown field more' },
    ],
  ];
  for (const [name, data, binary, expected] of cases) {
    it(`when the frame is ${name}, then ${JSON.stringify(expected)}`, () => {
      expect(parseClientFrame(data, binary)).to.deep.equal(expected);
    });
  }

  it('when a client names a long non-ASCII field, then the close reason stays printable and within 123 bytes', () => {
    const parsed = parseClientFrame(text({ type: 'ack', up_to: 1, ['é'.repeat(200)]: 1 }), false);
    if (parsed.ok) throw new Error('accepted');
    expect(Buffer.byteLength(parsed.reason)).to.be.at.most(123);
    expect(parsed.reason).to.match(/^invalid frame: unknown field \?+$/);
  });

  it('when an event is framed, then its stored JSON is spliced in byte for byte', () => {
    const stored = '{"id":"e","seq":3,"ciphertext":"a\\u00e9"}';
    expect(eventFrame(stored)).to.equal(`{"type":"event","event":${stored}}`);
    expect(JSON.parse(eventFrame(stored)).event.seq).to.equal(3);
  });
});
