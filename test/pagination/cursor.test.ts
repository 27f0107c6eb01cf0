import { describe, expect, it } from 'vitest';
import {
  type CursorValue,
  createCursorCodec,
  type CursorCodecOptions,
} from '../../src/pagination/cursor.js';
import { InvalidCursorError, type InvalidCursorReason } from '../../src/pagination/errors.js';
import { RestwellError } from '../../src/core/errors.js';

const SECRET_A = 'aaaaaaaaaaaaaaaa-secret-number-one-0123456789';
const SECRET_B = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 3);
const SECRET_C = 'c'.repeat(40);
const BINDING = { sort: ['-createdAt', 'id'], filter: { status: 'active' }, limit: 50 };

/** A small deterministic generator, so that a failure is reproducible from its seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomString(next: () => number): string {
  const length = Math.floor(next() * 12);
  let out = '';
  for (let i = 0; i < length; i++) {
    const kind = Math.floor(next() * 5);
    // ASCII (quotes, backslashes, controls), BMP, astral pairs, and lone surrogates.
    if (kind === 0) out += String.fromCharCode(Math.floor(next() * 128));
    else if (kind === 1) out += String.fromCharCode(Math.floor(next() * 0xd800));
    else if (kind === 2) out += String.fromCodePoint(0x10000 + Math.floor(next() * 0xfffff));
    else if (kind === 3) out += String.fromCharCode(0xd800 + Math.floor(next() * 0x800));
    else out += '"\\$n{}';
  }
  return out;
}

function randomValue(next: () => number): CursorValue {
  switch (Math.floor(next() * 10)) {
    case 0:
      return null;
    case 1:
      return next() < 0.5;
    case 2:
      return Math.floor((next() - 0.5) * 2 ** 53);
    case 3:
      return [-0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.1, 1e-300][
        Math.floor(next() * 6)
      ]!;
    case 4:
      return BigInt(Math.floor(next() * 2 ** 53)) * 2n ** 64n * (next() < 0.5 ? -1n : 1n);
    case 5:
      return new Date(Math.floor(next() * 2 ** 44));
    case 6:
      return {
        $ts: `2026-12-01T10:00:00.${String(Math.floor(next() * 1e6)).padStart(6, '0')}Z`,
      };
    default:
      return randomString(next);
  }
}

/** Same kinds and same values: `Object.is` for primitives, so -0 and NaN count. */
function expectSame(actual: readonly CursorValue[], expected: readonly CursorValue[]): void {
  expect(actual).toHaveLength(expected.length);
  expected.forEach((value, i) => {
    const got = actual[i];
    if (value instanceof Date) {
      expect(got).toBeInstanceOf(Date);
      expect((got as Date).getTime()).toBe(value.getTime());
    } else if (value !== null && typeof value === 'object') {
      expect(got).toEqual(value);
    } else {
      expect(Object.is(got, value)).toBe(true);
    }
  });
}

function reasonOf(fn: () => unknown): InvalidCursorReason | 'accepted' {
  try {
    fn();
    return 'accepted';
  } catch (error) {
    if (!(error instanceof InvalidCursorError)) throw error;
    return error.reason;
  }
}

function codec(options: Partial<CursorCodecOptions> = {}) {
  return createCursorCodec({ secrets: SECRET_A, ...options });
}

describe('cursor round trips', () => {
  for (const reveal of [false, true]) {
    it(`returns every kind of value unchanged (500 random payloads, reveal: ${reveal})`, () => {
      const next = prng(reveal ? 2 : 1);
      const cursors = codec({ reveal });
      for (let run = 0; run < 500; run++) {
        const payload = Array.from({ length: 1 + Math.floor(next() * 5) }, () => randomValue(next));
        const binding = { run, sort: ['a', '-b'] };
        expectSame(cursors.decode(cursors.encode(payload, binding), binding), payload);
      }
    });
  }

  it('keeps a bigint beyond 2^53, microsecond text, lone surrogates and NULL exactly', () => {
    const cursors = codec();
    const payload: CursorValue[] = [
      2n ** 63n - 1n,
      { $ts: '2026-12-01T10:00:00.123456Z' },
      '\ud800x\udfff',
      '👍🏽 ĳ \u0000',
      null,
      -0,
      false,
      new Date('2026-12-01T10:00:00.123Z'),
    ];
    const back = cursors.decode(cursors.encode(payload, BINDING), BINDING);
    expectSame(back, payload);
    expect(typeof back[0]).toBe('bigint');
  });

  it('does not depend on the order of the binding members', () => {
    const cursors = codec();
    const cursor = cursors.encode([1], { a: 1, b: { c: [1, 2], d: 'x' } });
    expect(cursors.decode(cursor, { b: { d: 'x', c: [1, 2] }, a: 1 })).toEqual([1]);
  });

  it('makes the same cursor for the same payload, binding and time step, and another when any differs', () => {
    let t = 1_800_000_000_001; // just after a step begins
    const cursors = codec({ maxAgeMs: 24_000, now: () => t }); // a step of 1 s
    const a = cursors.encode([1, 'x'], BINDING);
    t += 999;
    expect(cursors.encode([1, 'x'], BINDING)).toBe(a);
    expect(cursors.encode([1, 'y'], BINDING)).not.toBe(a);
    expect(cursors.encode([1, 'x'], { ...BINDING, limit: 99 })).not.toBe(a);
    expect(
      codec({ maxAgeMs: 24_000, now: () => t, secrets: ['z'.repeat(32)] }).encode(
        [1, 'x'],
        BINDING,
      ),
    ).not.toBe(a);
    t += 2;
    expect(cursors.encode([1, 'x'], BINDING)).not.toBe(a);
    // Without maxAgeMs a cursor carries no date: the same whenever it is made.
    let u = 1_800_000_000_000;
    const undated = codec({ now: () => u });
    const b = undated.encode([1], BINDING);
    u += 86_400_000;
    expect(undated.encode([1], BINDING)).toBe(b);
    // Equal plaintexts only: a one-bit change of the payload changes the whole sealed part.
    const c = Buffer.from(undated.encode([2], BINDING), 'base64url');
    const d = Buffer.from(b, 'base64url');
    expect(c.subarray(24).equals(d.subarray(24))).toBe(false);
  });

  it('refuses a value that is not a cursor value when encoding', () => {
    const cursors = codec();
    const bad = [{ a: 1 }, undefined, new Date(Number.NaN), { $ts: 1 }, () => 1];
    for (const value of bad) {
      expect(() => cursors.encode([value as CursorValue], BINDING)).toThrow(TypeError);
    }
    expect(() => cursors.encode('x' as unknown as CursorValue[], BINDING)).toThrow(TypeError);
    expect(() => cursors.encode(['x'.repeat(4000)], BINDING)).toThrow(RangeError);
  });
});

describe('cursor secrecy', () => {
  it('does not show the payload strings in clear by default', () => {
    const secret = 'alice@example.com';
    const cursor = codec().encode([secret, 'ZEBRA-9041', 424242n], BINDING);
    const bytes = Buffer.from(cursor, 'base64url');
    for (const text of [secret, 'ZEBRA-9041', '424242', 'active', 'createdAt']) {
      expect(bytes.includes(Buffer.from(text))).toBe(false);
      expect(bytes.toString('latin1')).not.toContain(text);
      expect(cursor).not.toContain(text);
    }
  });

  it('shows them with reveal: true, and stays tamper-proof', () => {
    const cursor = codec({ reveal: true }).encode(['alice@example.com'], BINDING);
    expect(Buffer.from(cursor, 'base64url').toString('latin1')).toContain('alice@example.com');
    const forged = Buffer.from(
      Buffer.from(cursor, 'base64url').toString('latin1').replace('alice', 'mallo'),
      'latin1',
    ).toString('base64url');
    expect(reasonOf(() => codec({ reveal: true }).decode(forged, BINDING))).toBe('signature');
  });

  it('reads cursors of either mode, so the option can be switched', () => {
    const sealed = codec().encode([1], BINDING);
    const revealed = codec({ reveal: true }).encode([2], BINDING);
    expect(codec({ reveal: true }).decode(sealed, BINDING)).toEqual([1]);
    expect(codec().decode(revealed, BINDING)).toEqual([2]);
  });
});

describe('tampering', () => {
  for (const reveal of [false, true]) {
    it(`refuses every single-bit flip at every byte position (reveal: ${reveal})`, () => {
      const cursors = codec({ reveal });
      const bytes = Buffer.from(cursors.encode([123n, 'name', null], BINDING), 'base64url');
      for (let i = 0; i < bytes.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const flipped = Buffer.from(bytes);
          flipped[i]! ^= 1 << bit;
          const reason = reasonOf(() => cursors.decode(flipped.toString('base64url'), BINDING));
          // Byte 0 is the format version: a cursor of another version is
          // refused as such before its tag can be checked.
          if (i === 0) expect(reason).toBe('version');
          else expect(['malformed', 'signature']).toContain(reason);
        }
      }
    });

    it(`refuses every truncation and every extension (reveal: ${reveal})`, () => {
      const cursors = codec({ reveal });
      const cursor = cursors.encode(['x'], BINDING);
      for (let n = 0; n < cursor.length; n++) {
        expect(['malformed', 'signature']).toContain(
          reasonOf(() => cursors.decode(cursor.slice(0, n), BINDING)),
        );
      }
      expect(['malformed', 'signature']).toContain(
        reasonOf(() => cursors.decode(`${cursor}AA`, BINDING)),
      );
    });
  }

  it('refuses a non-canonical spelling of a real cursor', () => {
    const cursors = codec();
    let cursor = cursors.encode(['x'], BINDING);
    while (Buffer.from(cursor, 'base64url').length % 3 === 0) {
      cursor = cursors.encode([`${cursor.length}x`], BINDING);
    }
    const last = cursor.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
    const other = cursor.slice(0, -1) + sibling;
    expect(Buffer.from(other, 'base64url')).toEqual(Buffer.from(cursor, 'base64url'));
    expect(reasonOf(() => cursors.decode(other, BINDING))).toBe('malformed');
  });
});

describe('hostile strings', () => {
  const cursors = codec({ maxAgeMs: 60_000 });
  const real = cursors.encode([1], BINDING);
  const header = Buffer.from(real, 'base64url').subarray(0, 24);
  const cases: [string, unknown][] = [
    ['empty', ''],
    ['10 KB', 'A'.repeat(10_240)],
    ['4097 characters', 'A'.repeat(4097)],
    ['not base64url', 'abc+/=='],
    ['padding', `${real}=`],
    ['spaces', ` ${real}`],
    ['unicode', 'é€👍'],
    ['one byte', 'AQ'],
    ['base64 of garbage', Buffer.from('{"v":1,"payload":[1]}').toString('base64url')],
    ['base64 of JSON', Buffer.from(JSON.stringify([1, 2, 3])).toString('base64url')],
    ['real header, no body', header.toString('base64url')],
    ['unknown mode', Buffer.concat([Buffer.from([1, 7]), Buffer.alloc(80)]).toString('base64url')],
    ['other version', Buffer.concat([Buffer.from([2, 0]), Buffer.alloc(80)]).toString('base64url')],
    ['version 0', Buffer.alloc(100).toString('base64url')],
    ['a number', 42],
    ['undefined', undefined],
    ['an object', { toString: () => real }],
  ];
  for (const [name, input] of cases) {
    it(`refuses ${name} with a 400 InvalidCursorError`, () => {
      let thrown: unknown;
      try {
        cursors.decode(input as string, BINDING);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(InvalidCursorError);
      expect(thrown).toBeInstanceOf(RestwellError);
      const error = thrown as InvalidCursorError;
      expect(error.status).toBe(400);
      expect(error.code).toBe('invalid-cursor');
      expect(error.expose).toBe(true);
      expect(error.extensions).toEqual({ reason: error.reason });
    });
  }

  it('names the version of a cursor from another format', () => {
    const other = Buffer.concat([Buffer.from([2, 0]), Buffer.alloc(80)]).toString('base64url');
    expect(reasonOf(() => cursors.decode(other, BINDING))).toBe('version');
  });

  it('refuses random strings of the alphabet and random bytes, never another error', () => {
    const next = prng(7);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (let run = 0; run < 500; run++) {
      const length = Math.floor(next() * 200);
      const text =
        run % 2 === 0
          ? Array.from({ length }, () => alphabet[Math.floor(next() * 64)]).join('')
          : Buffer.from(
              Array.from({ length }, (_, i) => (i === 0 ? 1 : Math.floor(next() * 256))),
            ).toString('base64url');
      expect(reasonOf(() => cursors.decode(text, BINDING))).not.toBe('accepted');
    }
  });
});

describe('rotation', () => {
  it('decodes cursors of an older secret and makes new ones with the first', () => {
    const old = codec({ secrets: SECRET_A });
    const rotated = codec({ secrets: [SECRET_B, SECRET_A] });
    const before = old.encode(['before'], BINDING);
    expect(rotated.decode(before, BINDING)).toEqual(['before']);
    const after = rotated.encode(['after'], BINDING);
    expect(reasonOf(() => old.decode(after, BINDING))).toBe('signature');
    expect(codec({ secrets: SECRET_B }).decode(after, BINDING)).toEqual(['after']);
  });

  it('works for signed-only cursors too', () => {
    const before = codec({ secrets: SECRET_A, reveal: true }).encode([1n], BINDING);
    const rotated = codec({ secrets: [SECRET_C, SECRET_A], reveal: true });
    expect(rotated.decode(before, BINDING)).toEqual([1n]);
    const after = rotated.encode([2n], BINDING);
    expect(codec({ secrets: SECRET_C }).decode(after, BINDING)).toEqual([2n]);
  });

  it('no longer decodes a cursor once its secret is removed', () => {
    const before = codec({ secrets: [SECRET_A] }).encode([1], BINDING);
    for (const reveal of [false, true]) {
      const cursor = codec({ secrets: SECRET_A, reveal }).encode([1], BINDING);
      expect(reasonOf(() => codec({ secrets: [SECRET_B, SECRET_C] }).decode(cursor, BINDING))).toBe(
        'signature',
      );
    }
    expect(reasonOf(() => codec({ secrets: SECRET_C }).decode(before, BINDING))).toBe('signature');
  });

  it('treats a string secret and its UTF-8 bytes as the same key', () => {
    const cursor = codec({ secrets: SECRET_A }).encode([1], BINDING);
    expect(codec({ secrets: Buffer.from(SECRET_A) }).decode(cursor, BINDING)).toEqual([1]);
  });
});

describe('binding', () => {
  const cursors = codec();
  const cursor = cursors.encode(['x', 1n], BINDING);
  const others: [string, unknown][] = [
    ['another sort', { ...BINDING, sort: ['createdAt', 'id'] }],
    ['another filter', { ...BINDING, filter: { status: 'closed' } }],
    ['another page size', { ...BINDING, limit: 51 }],
    ['a string limit', { ...BINDING, limit: '50' }],
    ['a bigint limit', { ...BINDING, limit: 50n }],
    ['no binding', null],
    ['an empty object', {}],
  ];
  for (const [name, binding] of others) {
    it(`refuses the cursor used with ${name}`, () => {
      expect(reasonOf(() => cursors.decode(cursor, binding))).toBe('mismatch');
    });
  }

  it('checks the binding of a signed-only cursor as well', () => {
    const revealed = codec({ reveal: true }).encode([1], BINDING);
    expect(reasonOf(() => cursors.decode(revealed, { ...BINDING, limit: 10 }))).toBe('mismatch');
  });

  it('refuses a binding that is not JSON-like, as the programming error it is', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(() => cursors.encode([1], deep)).toThrow(TypeError);
    expect(() => cursors.encode([1], { f: () => 1 })).toThrow(TypeError);
    expect(() => cursors.decode(cursor, deep)).toThrow(TypeError);
  });

  it('treats undefined members as absent, as JSON does', () => {
    const made = cursors.encode([1], { a: 1 });
    expect(cursors.decode(made, { a: 1, b: undefined })).toEqual([1]);
  });

  it('does not show the binding in clear', () => {
    const bytes = Buffer.from(codec({ reveal: true }).encode([1], BINDING), 'base64url');
    expect(bytes.toString('latin1')).not.toContain('createdAt');
  });
});

describe('expiry', () => {
  it('accepts a cursor up to maxAgeMs and refuses it after', () => {
    let t = 1_800_000_000_000;
    const cursors = codec({ maxAgeMs: 60_000, now: () => t });
    const cursor = cursors.encode([1], BINDING);
    t += 60_000;
    expect(cursors.decode(cursor, BINDING)).toEqual([1]);
    t += 1;
    expect(reasonOf(() => cursors.decode(cursor, BINDING))).toBe('expired');
  });

  it('never expires without maxAgeMs', () => {
    let t = 1_800_000_000_000;
    const cursors = codec({ now: () => t });
    const cursor = cursors.encode([1], BINDING);
    t += 10 * 365 * 24 * 3600 * 1000;
    expect(cursors.decode(cursor, BINDING)).toEqual([1]);
  });

  it('accepts a small clock skew and refuses a cursor dated further in the future', () => {
    let t = 1_800_000_000_000;
    const cursors = codec({ maxAgeMs: 60_000, now: () => t }); // a step of 2.5 s
    const cursor = cursors.encode([1], BINDING);
    t -= 62_500;
    expect(cursors.decode(cursor, BINDING)).toEqual([1]);
    t -= 1;
    expect(reasonOf(() => cursors.decode(cursor, BINDING))).toBe('expired');
  });
});

describe('options', () => {
  it('refuses unknown options with the nearest name', () => {
    expect(() =>
      createCursorCodec({ secrets: SECRET_A, maxAge: 1 } as unknown as CursorCodecOptions),
    ).toThrow(/unknown option "maxAge". Did you mean "maxAgeMs"\?/);
    expect(() => createCursorCodec(null as unknown as CursorCodecOptions)).toThrow(TypeError);
    expect(() => createCursorCodec(undefined as unknown as CursorCodecOptions)).toThrow(
      /"secrets" is required/,
    );
  });

  it('refuses missing, empty and short secrets without showing them', () => {
    const short = 'short-secret-do-not-print';
    const cases: unknown[] = [
      undefined,
      [],
      short,
      [SECRET_A, short],
      new Uint8Array(31),
      '',
      42,
      null,
      [{ key: short }],
    ];
    for (const secrets of cases) {
      let message = '';
      try {
        createCursorCodec({ secrets } as CursorCodecOptions);
      } catch (error) {
        expect(error).toBeInstanceOf(TypeError);
        message = (error as Error).message;
      }
      expect(message).toMatch(/"secrets/);
      expect(message).not.toContain('short');
      expect(message).not.toContain(SECRET_A.slice(0, 8));
    }
    expect(() => createCursorCodec({ secrets: [SECRET_A, short] })).toThrow(/secrets\[1\]/);
    expect(() => createCursorCodec({ secrets: 'é'.repeat(16) })).not.toThrow();
  });

  it('refuses bad values of maxAgeMs, reveal and now', () => {
    const bad: Partial<Record<keyof CursorCodecOptions, unknown>>[] = [
      { maxAgeMs: 0 },
      { maxAgeMs: -1 },
      { maxAgeMs: 1.5 },
      { maxAgeMs: '60000' },
      { maxAgeMs: Number.POSITIVE_INFINITY },
      { reveal: 'yes' },
      { now: 5 },
    ];
    for (const options of bad) {
      const name = Object.keys(options)[0]!;
      expect(() =>
        createCursorCodec({ secrets: SECRET_A, ...options } as CursorCodecOptions),
      ).toThrow(new RegExp(`"${name}"`));
    }
  });
});
