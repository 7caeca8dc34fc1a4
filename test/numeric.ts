// numeric.ts — test-side number formats, written independently of src-ts/dtype.ts: rounding a
// float64 to float16 / bfloat16 / float32 by arithmetic (not bit tricks), and encoding/decoding
// bit patterns from the format's definition. The dtype tests use these as the oracle.

export interface Format {
  name: 'float16' | 'bfloat16' | 'float32';
  mantissaBits: number;
  exponentBits: number;
  /** Smallest normal exponent. */
  minExp: number;
  /** Largest finite value. */
  maxFinite: number;
}

export const FLOAT16: Format = { name: 'float16', mantissaBits: 10, exponentBits: 5, minExp: -14, maxFinite: 65504 };
export const BFLOAT16: Format = {
  name: 'bfloat16',
  mantissaBits: 7,
  exponentBits: 8,
  minExp: -126,
  maxFinite: (2 - 2 ** -7) * 2 ** 127,
};
export const FLOAT32: Format = {
  name: 'float32',
  mantissaBits: 23,
  exponentBits: 8,
  minExp: -126,
  maxFinite: (2 - 2 ** -23) * 2 ** 127,
};

export function formatOf(dtype: string): Format {
  if (dtype === 'float16') return FLOAT16;
  if (dtype === 'bfloat16') return BFLOAT16;
  if (dtype === 'float32') return FLOAT32;
  throw new Error(`no test format for ${dtype}`);
}

/** floor(log2(a)) for a > 0, exact. */
function exponentOf(a: number): number {
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  return e;
}

/** Rounds x to the nearest value of `fmt`, ties to even; overflow to ±Infinity; keeps -0 and NaN. */
export function roundTo(x: number, fmt: Format): number {
  if (Number.isNaN(x) || x === 0 || !Number.isFinite(x)) return x;
  const a = Math.abs(x);
  const e = Math.max(exponentOf(a), fmt.minExp);
  const ulp = 2 ** (e - fmt.mantissaBits);
  const q = a / ulp; // exact (power-of-two scaling) unless it underflows, which these formats never reach
  let n = Math.floor(q);
  const r = q - n;
  if (r > 0.5 || (r === 0.5 && n % 2 === 1)) n++;
  const mag = n * ulp;
  const result = mag > fmt.maxFinite ? Infinity : mag;
  return x < 0 ? -result : result;
}

/** Bit pattern of a value that is exactly representable in `fmt` (±0, ±Inf, NaN allowed). */
export function bitsOf(value: number, fmt: Format): number {
  const total = 1 + fmt.exponentBits + fmt.mantissaBits;
  const signBit = 2 ** (total - 1);
  const expMax = 2 ** fmt.exponentBits - 1;
  const bias = 2 ** (fmt.exponentBits - 1) - 1;
  if (Number.isNaN(value)) return expMax * 2 ** fmt.mantissaBits + 2 ** (fmt.mantissaBits - 1);
  const sign = value < 0 || Object.is(value, -0) ? signBit : 0;
  const a = Math.abs(value);
  if (a === 0) return sign;
  if (a === Infinity) return sign + expMax * 2 ** fmt.mantissaBits;
  const e = exponentOf(a);
  if (e < fmt.minExp) return sign + a / 2 ** (fmt.minExp - fmt.mantissaBits); // subnormal
  const mant = (a / 2 ** e - 1) * 2 ** fmt.mantissaBits;
  if (!Number.isInteger(mant)) throw new Error(`${value} is not a ${fmt.name} value`);
  return sign + (e + bias) * 2 ** fmt.mantissaBits + mant;
}

/** Value of a bit pattern of `fmt`. */
export function valueOf(bits: number, fmt: Format): number {
  const total = 1 + fmt.exponentBits + fmt.mantissaBits;
  const sign = Math.floor(bits / 2 ** (total - 1)) ? -1 : 1;
  const expMax = 2 ** fmt.exponentBits - 1;
  const bias = 2 ** (fmt.exponentBits - 1) - 1;
  const exp = Math.floor(bits / 2 ** fmt.mantissaBits) % (expMax + 1);
  const mant = bits % 2 ** fmt.mantissaBits;
  if (exp === expMax) return mant ? NaN : sign * Infinity;
  if (exp === 0) return sign * mant * 2 ** (fmt.minExp - fmt.mantissaBits);
  return sign * (1 + mant / 2 ** fmt.mantissaBits) * 2 ** (exp - bias);
}

/** True when a bit pattern is a NaN of `fmt`. */
export function isNaNBits(bits: number, fmt: Format): boolean {
  return Number.isNaN(valueOf(bits, fmt));
}
