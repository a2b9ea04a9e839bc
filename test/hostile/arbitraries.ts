import fc from 'fast-check';

/** Values a careless or hostile client might put anywhere: the fuzzers' vocabulary. */
export interface Vocabulary {
  /** Real ids and names of the fuzzed users, so some requests reach the handlers. */
  ids: string[];
  names: string[];
}

const b64Sized = (n: number) => Buffer.alloc(n, n % 251).toString('base64');

export const hostileKeys = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'from',
  'sender',
  'sender_user_id',
  'sender_device_id',
  'user_id',
  'device_id',
  'admin',
  'is_admin',
  '',
  '\u0000',
  'a'.repeat(300),
);

export function hostileString(v: Vocabulary): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
    {
      weight: 1,
      arbitrary: fc
        .array(fc.integer({ min: 0xd800, max: 0xdfff }), { minLength: 1, maxLength: 3 })
        .map((cs) => `x${String.fromCharCode(...cs)}y`),
    },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        '',
        ' ',
        '\u0000',
        'a\u0000b',
        '\u202e',
        '💥',
        '__proto__',
        'constructor',
        '../../etc/passwd',
        '%00',
        '%E0%A4%A',
        "' OR 1=1 --",
        '"; DROP TABLE users; --',
        '<script>alert(1)</script>',
        'null',
        'true',
        '-1',
        '0',
        '1e309',
        '18446744073709551616',
        '0x10',
        ' 1',
        'NaN',
        'http://127.0.0.1/',
        'https://169.254.169.254/latest/meta-data',
        'ftp://example.com/',
        'javascript:alert(1)',
        '+15551234567',
        'delivered',
        'read',
      ),
    },
    { weight: 2, arbitrary: fc.constantFrom(...v.ids, ...v.names) },
    { weight: 1, arbitrary: fc.uuid() },
    // standard base64 of sizes around every limit, and base64 that is not standard
    {
      weight: 3,
      arbitrary: fc.constantFrom(0, 1, 16, 23, 24, 25, 31, 32, 33, 64 * 1024 + 1).map(b64Sized),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '====',
        'YQ',
        'YQ=',
        'Y Q==',
        'YWJj\n',
        '-_-_',
        'YWJj====',
        b64Sized(32).replace(/[+/]/g, '-'),
      ),
    },
    { weight: 1, arbitrary: fc.constantFrom(1000, 70_000, 300_000).map((n) => 'x'.repeat(n)) },
  );
}

const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true }),
  fc.constantFrom(-1, 0, 1, 1.5, -0, 500, 501, 2 ** 53, 2 ** 63, 1e308, Number.MAX_SAFE_INTEGER + 2),
);

/** An object with own, enumerable keys even for `__proto__`, so JSON.stringify writes them. */
function objectOf(entries: [string, unknown][]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, val] of entries)
    Object.defineProperty(o, k, { value: val, enumerable: true, configurable: true, writable: true });
  return o;
}

export function hostileValue(v: Vocabulary): fc.Arbitrary<unknown> {
  const { tree } = fc.letrec((tie) => ({
    leaf: fc.oneof(hostileString(v), hostileNumber, fc.boolean(), fc.constant(null)),
    tree: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      { weight: 6, arbitrary: tie('leaf') },
      { weight: 1, arbitrary: fc.array(tie('tree'), { maxLength: 4 }) },
      {
        weight: 1,
        arbitrary: fc
          .array(fc.tuple(fc.oneof(hostileKeys, fc.string({ maxLength: 10 })), tie('tree')), { maxLength: 4 })
          .map(objectOf),
      },
    ),
  }));
  return tree;
}

type Def = { type: string; [k: string]: unknown };
const defOf = (s: unknown): Def | undefined => (s as { _zod?: { def: Def } } | undefined)?._zod?.def;

/**
 * Values shaped like what `schema` expects but hostile in their details: the schema's own
 * keys with hostile values, some omitted, some extra; arrays of such elements. Unknown schema
 * kinds fall back to any hostile value.
 */
export function nearSchema(schema: unknown, v: Vocabulary, depth = 0): fc.Arbitrary<unknown> {
  const def = defOf(schema);
  const any = hostileValue(v);
  if (!def || depth > 4) return any;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'readonly':
      return fc.oneof(
        nearSchema(def.innerType, v, depth),
        fc.constant(def.type === 'nullable' ? null : undefined),
      );
    case 'pipe':
      return nearSchema(def.in, v, depth);
    case 'object': {
      const shape = def.shape as Record<string, unknown>;
      const fields = Object.entries(shape).map(([k, s]) =>
        fc.option(
          nearSchema(s, v, depth + 1).map((x) => [k, x] as [string, unknown]),
          { freq: 4 },
        ),
      );
      const extra = fc.array(fc.tuple(fc.oneof(hostileKeys, fc.string({ maxLength: 12 })), any), {
        maxLength: 2,
      });
      return fc
        .tuple(
          fc.tuple(...fields),
          fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: extra }),
        )
        .map(([own, more]) =>
          objectOf([...own.filter((e): e is [string, unknown] => e !== null && e[1] !== undefined), ...more]),
        );
    }
    case 'array':
      return fc.oneof(
        { weight: 5, arbitrary: fc.array(nearSchema(def.element, v, depth + 1), { maxLength: 3 }) },
        { weight: 1, arbitrary: any },
      );
    case 'enum':
      return fc.oneof(fc.constantFrom(...Object.values(def.entries as Record<string, string>)), any);
    case 'string':
      return fc.oneof({ weight: 4, arbitrary: hostileString(v) }, { weight: 1, arbitrary: any });
    case 'number':
    case 'int':
      return fc.oneof({ weight: 4, arbitrary: hostileNumber }, { weight: 1, arbitrary: any });
    default:
      return any;
  }
}
