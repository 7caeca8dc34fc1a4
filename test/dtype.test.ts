// float16 / bfloat16 conversions, checked against an independent arithmetic oracle
// (test/numeric.ts) over edge cases and random bit patterns.
import {
  bfloat16Bits,
  bfloat16Value,
  float16Bits,
  float16Value,
  fromBfloat16,
  fromFloat16,
  fromFloat32,
  toBfloat16,
  toFloat16,
  toFloat32,
} from '../src-ts/index';
import { makeRng } from './helpers';
import { BFLOAT16, FLOAT16, type Format, bitsOf, isNaNBits, roundTo, valueOf } from './numeric';

const f32 = (bits: number) => new Float32Array(new Uint32Array([bits >>> 0]).buffer)[0];

/** Edge values for a format: zeros, infinities, NaN, extremes, subnormals, ties, overflow. */
function edgeValues(fmt: Format): number[] {
  const minSub = 2 ** (fmt.minExp - fmt.mantissaBits);
  const minNorm = 2 ** fmt.minExp;
  const ulp1 = 2 ** -fmt.mantissaBits;
  const out = [
    0, -0, Infinity, -Infinity, 1, -1, 0.1, -0.1, 1 / 3, Math.PI,
    minSub, minSub / 2, (minSub * 3) / 2, minSub * 0.49, minSub * 0.51, minSub * 2.5, minNorm,
    minNorm - minSub, minNorm - minSub / 2, minNorm * 0.75,
    1 + ulp1 / 2, 1 + (3 * ulp1) / 2, 1 + ulp1 / 2 + 2 ** -23, 1 - ulp1 / 4, 2 - ulp1 / 2,
    fmt.maxFinite, -fmt.maxFinite, fmt.maxFinite * (1 + ulp1 / 4), fmt.maxFinite * (1 + ulp1 / 2 - 2 ** -22),
    fmt.maxFinite * (1 + ulp1 / 2), 3.4e38, -3.4e38, 1e-45, -1e-45,
  ];
  return out.map((x) => Math.fround(x));
}

function oracleBits(x: number, fmt: Format): number {
  return bitsOf(roundTo(x, fmt), fmt);
}

function randomFloat32s(n: number): Float32Array {
  const rng = makeRng();
  const bits = new Uint32Array(n);
  for (let i = 0; i < n; i++) bits[i] = Math.floor(rng.next() * 2 ** 32);
  return new Float32Array(bits.buffer);
}

describe.each([
  ['float16', FLOAT16, toFloat16, fromFloat16, float16Bits, float16Value],
  ['bfloat16', BFLOAT16, toBfloat16, fromBfloat16, bfloat16Bits, bfloat16Value],
] as const)('%s conversion', (name, fmt, to, from, oneBits, oneValue) => {
  it('decodes every bit pattern exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const decoded = from(all);
    for (let i = 0; i < 65536; i++) {
      const want = valueOf(i, fmt);
      if (Number.isNaN(want)) {
        if (!Number.isNaN(decoded[i])) throw new Error(`${name} 0x${i.toString(16)} should decode to NaN`);
      } else if (!Object.is(decoded[i], Math.fround(want))) {
        throw new Error(`${name} 0x${i.toString(16)}: got ${decoded[i]}, want ${want}`);
      }
      if (!Object.is(oneValue(i), decoded[i]) && !Number.isNaN(want)) throw new Error(`${name}Value(0x${i.toString(16)})`);
    }
  });

  it('round-trips every non-NaN bit pattern', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = to(from(all));
    for (let i = 0; i < 65536; i++) {
      if (isNaNBits(i, fmt)) continue;
      if (back[i] !== i) throw new Error(`${name} 0x${i.toString(16)} came back as 0x${back[i].toString(16)}`);
    }
  });

  it('rounds edge cases to nearest, ties to even (zeros, infinities, subnormals, ties, overflow)', () => {
    const xs = edgeValues(fmt);
    const got = to(Float32Array.from(xs));
    xs.forEach((x, i) => {
      const want = oracleBits(x, fmt);
      if (got[i] !== want) {
        throw new Error(`${name}(${x}): got 0x${got[i].toString(16)}, want 0x${want.toString(16)}`);
      }
      expect(oneBits(x)).toBe(want);
    });
  });

  it('matches the oracle on 50,000 random float32 bit patterns', () => {
    const xs = randomFloat32s(50000);
    const got = to(xs);
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i];
      if (Number.isNaN(x)) {
        if (!isNaNBits(got[i], fmt)) throw new Error(`${name}: NaN became 0x${got[i].toString(16)}`);
        continue;
      }
      const want = oracleBits(x, fmt);
      if (got[i] !== want) throw new Error(`${name}(${x}): got 0x${got[i].toString(16)}, want 0x${want.toString(16)}`);
    }
  });

  it('matches the oracle on values near 1 and in the subnormal range', () => {
    const rng = makeRng();
    const xs = new Float32Array(20000);
    for (let i = 0; i < xs.length; i++) {
      const scale = i % 2 ? 2 ** (fmt.minExp - 3 + Math.floor(rng.next() * 6)) : 1;
      xs[i] = (rng.next() * 4 - 2) * scale;
    }
    const got = to(xs);
    for (let i = 0; i < xs.length; i++) {
      const want = oracleBits(xs[i], fmt);
      if (got[i] !== want) throw new Error(`${name}(${xs[i]}): got 0x${got[i].toString(16)}, want 0x${want.toString(16)}`);
    }
  });

  it('keeps NaN a NaN (sign and top payload kept, quiet)', () => {
    for (const bits of [0x7fc00000, 0xffc00000, 0x7f800001, 0x7fa00000, 0xff800001]) {
      const h = to(new Float32Array([f32(bits)]))[0];
      expect(isNaNBits(h, fmt)).toBe(true);
      expect(h >> 15).toBe(bits >>> 31);
      expect(Number.isNaN(from(new Uint16Array([h]))[0])).toBe(true);
    }
  });

  it('keeps the sign of zero and infinities', () => {
    const got = to(new Float32Array([0, -0, Infinity, -Infinity]));
    expect(Array.from(got)).toEqual([0, 0x8000, bitsOf(Infinity, fmt), bitsOf(-Infinity, fmt)]);
    expect(Object.is(from(new Uint16Array([0x8000]))[0], -0)).toBe(true);
  });

  it('overflows to Inf past the largest finite value (after rounding)', () => {
    const big = Math.fround(fmt.maxFinite * (1 + 2 ** -fmt.mantissaBits));
    expect(to(new Float32Array([big, -big]))[0]).toBe(bitsOf(Infinity, fmt));
    expect(to(new Float32Array([big, -big]))[1]).toBe(bitsOf(-Infinity, fmt));
    expect(to(new Float32Array([fmt.maxFinite]))[0]).toBe(bitsOf(fmt.maxFinite, fmt));
  });

  it('accepts plain number arrays', () => {
    expect(Array.from(to([1, -2, 0.5]))).toEqual([1, -2, 0.5].map((x) => oracleBits(x, fmt)));
  });

  it('goes through toFloat32 / fromFloat32 by dtype name', () => {
    const xs = Float32Array.from([1.5, -3, 0.25]);
    const bits = fromFloat32(xs, name);
    expect(Array.from(toFloat32(bits, name))).toEqual([1.5, -3, 0.25]);
  });
});

describe('float16 specifics', () => {
  it('rounds 65519 down to 65504 and 65520 (a tie) up to Inf', () => {
    expect(Array.from(toFloat16([65519, 65520, -65520]))).toEqual([0x7bff, 0x7c00, 0xfc00]);
  });
  it('rounds the smallest subnormal tie to even (2^-25 → 0, 3·2^-25 → 2·2^-24)', () => {
    expect(Array.from(toFloat16([2 ** -25, 3 * 2 ** -25, 2 ** -24]))).toEqual([0, 2, 1]);
  });
  it('carries a rounded-up subnormal into the smallest normal', () => {
    expect(toFloat16([2 ** -14 - 2 ** -26])[0]).toBe(0x0400);
  });
});

describe('bfloat16 specifics', () => {
  it('is the top half of float32 when exact, and rounds ties to even', () => {
    expect(toBfloat16([1])[0]).toBe(0x3f80);
    expect(toBfloat16([f32(0x3f808000)])[0]).toBe(0x3f80); // tie, even stays
    expect(toBfloat16([f32(0x3f818000)])[0]).toBe(0x3f82); // tie, odd rounds up
    expect(toBfloat16([f32(0x7f7fffff)])[0]).toBe(0x7f80); // max float32 → Inf
  });
  it('keeps float32 subnormals (no flush to zero)', () => {
    expect(toBfloat16([f32(0x00010000)])[0]).toBe(0x0001);
    expect(fromBfloat16([0x0001])[0]).toBe(f32(0x00010000));
  });
});
