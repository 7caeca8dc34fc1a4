// dtype.ts — dtype names, their host typed arrays, and float16 / bfloat16 / float8_e4m3 conversions.
//
// 16-bit host data are Uint16Arrays of raw bits (Node 20 has no Float16Array). The conversions
// here are plain TypeScript on bit patterns: round to nearest, ties to even; NaN stays NaN, ±Inf
// stays ±Inf, -0 stays -0, subnormals are kept (no flush to zero), and overflow goes to Inf.
import { FlashAttentionError, describeValue } from './errors';
import { typedArrayBuffer, typedArrayByteOffset, typedArrayLength, typedArrayName } from './own';

/** Element types. float32 runs on the CPU backend only; float8_e4m3 on Hopper GPUs (forward);
 * int32 carries lengths, offsets and block tables (never an attention operand). */
export type DType = 'float32' | 'float16' | 'bfloat16' | 'float8_e4m3' | 'int32';

/** Host typed array for each dtype: Float32Array; Uint16Array of bits; Uint8Array of bits; Int32Array. */
export type HostArray = Float32Array | Uint16Array | Uint8Array | Int32Array;

/** Host typed array type that holds a given dtype. */
export type ArrayFor<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'float16' | 'bfloat16'
    ? Uint16Array
    : D extends 'int32'
      ? Int32Array
      : Uint8Array;

export const DTYPES: ReadonlyArray<DType> = ['float32', 'float16', 'bfloat16', 'float8_e4m3', 'int32'];

/** @internal */
export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && (DTYPES as readonly string[]).includes(value);
}

/** Bytes per element. @internal */
export function dtypeBytes(dtype: DType): number {
  switch (dtype) {
    case 'float32':
    case 'int32':
      return 4;
    case 'float16':
    case 'bfloat16':
      return 2;
    case 'float8_e4m3':
      return 1;
  }
  throw new FlashAttentionError('E_DTYPE', `unknown dtype ${describeValue(dtype)}`);
}

/** The name of the typed array a dtype's host data must be. @internal */
export function arrayNameFor(dtype: DType): 'Float32Array' | 'Uint16Array' | 'Uint8Array' | 'Int32Array' {
  switch (dtype) {
    case 'int32':
      return 'Int32Array';
    case 'float32':
      return 'Float32Array';
    case 'float16':
    case 'bfloat16':
      return 'Uint16Array';
    case 'float8_e4m3':
      return 'Uint8Array';
  }
  throw new FlashAttentionError('E_DTYPE', `unknown dtype ${describeValue(dtype)}`);
}

/**
 * True when `data` is the host typed array for `dtype`, told by its internal slots: a typed array
 * from another realm (vm.runInNewContext) counts, a Proxy or a look-alike does not. @internal
 */
export function arrayMatches(data: unknown, dtype: DType): boolean {
  const name = typedArrayName(data);
  switch (dtype) {
    case 'float32':
      return name === 'Float32Array';
    case 'float16':
      return name === 'Uint16Array' || isFloat16Array(data);
    case 'bfloat16':
      return name === 'Uint16Array';
    case 'float8_e4m3':
      return name === 'Uint8Array';
    case 'int32':
      return name === 'Int32Array';
  }
  return false;
}

/** True for a Float16Array (on runtimes that have one, from any realm). @internal */
export function isFloat16Array(data: unknown): data is ArrayBufferView & { length: number } {
  const name = typedArrayName(data);
  if (name === 'Float16Array') return true;
  // A real typed array that is an instance of this realm's Float16Array (a polyfill subclass).
  const F16 = (globalThis as { Float16Array?: abstract new (...args: never[]) => unknown }).Float16Array;
  try {
    return name !== undefined && typeof F16 === 'function' && data instanceof F16;
  } catch {
    return false;
  }
}

/** The host array the addon takes: a Float16Array becomes a Uint16Array view of its bits. @internal */
export function nativeArray(data: HostArray | ArrayBufferView): HostArray {
  if (isFloat16Array(data)) {
    return new Uint16Array(typedArrayBuffer(data), typedArrayByteOffset(data), typedArrayLength(data));
  }
  return data as HostArray;
}

/** A zero-filled host array for `length` elements of `dtype`. @internal */
export function allocHost<D extends DType>(dtype: D, length: number): ArrayFor<D> {
  return allocHostArray(dtype, length) as ArrayFor<D>;
}

function allocHostArray(dtype: DType, length: number): HostArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(length);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(length);
    case 'float8_e4m3':
      return new Uint8Array(length);
    case 'int32':
      return new Int32Array(length);
  }
  throw new FlashAttentionError('E_DTYPE', `unknown dtype ${describeValue(dtype)}`);
}

// ---- float16 ------------------------------------------------------------------------------

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** float32 bit pattern -> float16 bits, round to nearest even. @internal */
export function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    // Inf stays Inf; NaN stays a quiet NaN and keeps its top payload bits.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const e = exp - 127 + 15; // biased half exponent
  if (e >= 0x1f) return sign | 0x7c00; // too large even before rounding: Inf
  if (e <= 0) {
    // Subnormal half (or zero): the value in units of 2^-24 is (1.mant) >> (14 - e).
    if (e < -10) return sign; // below half of the smallest subnormal: rounds to ±0
    const full = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let h = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1) === 1)) h++; // may carry into the smallest normal
    return sign | h;
  }
  // Normal: drop 13 mantissa bits with round-to-nearest-even. A carry out of the mantissa bumps
  // the exponent, and a carry out of the largest exponent gives exactly Inf (0x7c00).
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** Converts one number to float16 bits (the number is first rounded to float32). */
export function float16Bits(value: number): number {
  scratchF32[0] = value;
  return f32BitsToF16(scratchU32[0]);
}

let f16Table: Float32Array | undefined;

function f16Decode(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** All 65536 float16 values as float32 (256 KiB, built on first use). */
function float16Table(): Float32Array {
  if (!f16Table) {
    const t = new Float32Array(65536);
    const bits = new Uint32Array(t.buffer);
    for (let h = 0; h < 65536; h++) {
      const exp = (h >>> 10) & 0x1f;
      const mant = h & 0x3ff;
      if (exp === 0x1f && mant !== 0) {
        // Keep the sign and payload of a NaN, like the hardware conversion.
        bits[h] = ((h & 0x8000) << 16) | 0x7f800000 | (mant << 13);
      } else {
        t[h] = f16Decode(h);
      }
    }
    f16Table = t;
  }
  return f16Table;
}

/** The value of one float16 bit pattern. */
export function float16Value(bits: number): number {
  return float16Table()[bits & 0xffff];
}

function asF32Bits(values: Float32Array | ArrayLike<number>): Uint32Array {
  const f32 = values instanceof Float32Array ? values : Float32Array.from(values);
  return new Uint32Array(f32.buffer, f32.byteOffset, f32.length);
}

/** float32 values -> float16 bits (Uint16Array), round to nearest even. */
export function toFloat16(values: Float32Array | ArrayLike<number>): Uint16Array {
  const src = asF32Bits(values);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16(src[i]);
  return out;
}

/** float16 bits -> float32 values (exact). */
export function fromFloat16(bits: Uint16Array | ArrayLike<number>): Float32Array {
  const table = float16Table();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i] & 0xffff];
  return out;
}

// ---- bfloat16 -----------------------------------------------------------------------------

/** float32 bit pattern -> bfloat16 bits, round to nearest even. @internal */
export function f32BitsToBf16(x: number): number {
  if ((x & 0x7fffffff) >>> 0 > 0x7f800000) return ((x >>> 16) | 0x0040) & 0xffff; // quiet NaN
  // Adding 0x7fff plus the lowest kept bit rounds ties to even; a carry into the exponent is
  // the right answer, including the overflow to Inf. The sum stays below 2^32 for non-NaN input.
  return ((x >>> 0) + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

/** Converts one number to bfloat16 bits (the number is first rounded to float32). */
export function bfloat16Bits(value: number): number {
  scratchF32[0] = value;
  return f32BitsToBf16(scratchU32[0]);
}

/** The value of one bfloat16 bit pattern. */
export function bfloat16Value(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0];
}

/** float32 values -> bfloat16 bits (Uint16Array), round to nearest even. */
export function toBfloat16(values: Float32Array | ArrayLike<number>): Uint16Array {
  const src = asF32Bits(values);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToBf16(src[i]);
  return out;
}

/** bfloat16 bits -> float32 values (exact). */
export function fromBfloat16(bits: Uint16Array | ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  const u32 = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) u32[i] = (bits[i] & 0xffff) << 16;
  return out;
}

/**
 * Host data of a tensor as float32 values (float32 data is returned as is). float8_e4m3 is
 * decoded too (OCP E4M3: bias 7, no Inf, S.1111.111 is NaN).
 */
export function toFloat32(data: HostArray, dtype: DType): Float32Array {
  switch (dtype) {
    case 'float32':
      return data as Float32Array;
    case 'float16':
      return fromFloat16(data as Uint16Array);
    case 'bfloat16':
      return fromBfloat16(data as Uint16Array);
    case 'float8_e4m3':
      return fromFloat8E4M3(data as Uint8Array);
  }
  throw new FlashAttentionError('E_DTYPE', `unknown dtype ${describeValue(dtype)}`);
}

/** float32 values -> host data of `dtype` (float32 values are copied). */
export function fromFloat32(values: Float32Array | ArrayLike<number>, dtype: DType): HostArray {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values);
    case 'float16':
      return toFloat16(values);
    case 'bfloat16':
      return toBfloat16(values);
    case 'float8_e4m3':
      return toFloat8E4M3(values);
  }
  throw new FlashAttentionError('E_DTYPE', `unknown dtype ${describeValue(dtype)}`);
}

// ---- float8_e4m3 (OCP "E4M3FN": bias 7, no Inf, max ±448, S.1111.111 is NaN) -----------------

/** float32 bit pattern -> float8_e4m3 bits, round to nearest even, saturating to ±448 like
 * cvt.rn.satfinite (±Inf too); NaN stays NaN (S.1111.111), -0 stays -0. @internal */
export function f32BitsToE4M3(x: number): number {
  const sign = (x >>> 24) & 0x80;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7e : sign | 0x7f;
  const e = exp - 127 + 7; // biased e4m3 exponent
  if (e >= 16) return sign | 0x7e; // 512 or more: saturate
  if (e <= 0) {
    // Subnormal e4m3 (or zero): the value in units of 2^-9 is (1.mant) >> (141 - exp).
    if (exp === 0) return sign; // float32 zero or subnormal: far below 2^-10
    const shift = 141 - exp; // 21..140
    if (shift > 24) return sign; // below half of the smallest subnormal: rounds to ±0
    const full = mant | 0x800000;
    let h = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1) === 1)) h++; // may carry into the smallest normal
    return sign | h;
  }
  // Normal: drop 20 mantissa bits with round-to-nearest-even; a carry out of the mantissa bumps
  // the exponent. 0x7f (the NaN code) and beyond mean more than 448 after rounding: saturate.
  let h = (e << 3) | (mant >>> 20);
  const rem = mant & 0xfffff;
  if (rem > 0x80000 || (rem === 0x80000 && (h & 1) === 1)) h++;
  return sign | Math.min(h, 0x7e);
}

let e4m3Table: Float32Array | undefined;

/** All 256 float8_e4m3 values as float32 (built on first use). */
function float8E4M3Table(): Float32Array {
  if (!e4m3Table) {
    const t = new Float32Array(256);
    for (let b = 0; b < 256; b++) {
      const sign = b & 0x80 ? -1 : 1;
      const exp = (b >>> 3) & 0xf;
      const mant = b & 0x7;
      if (exp === 0xf && mant === 0x7) t[b] = NaN;
      else if (exp === 0) t[b] = sign * mant * 2 ** -9;
      else t[b] = sign * (1 + mant / 8) * 2 ** (exp - 7);
    }
    e4m3Table = t;
  }
  return e4m3Table;
}

/** The value of one float8_e4m3 bit pattern. */
export function float8E4M3Value(bits: number): number {
  return float8E4M3Table()[bits & 0xff];
}

/** Converts one number to float8_e4m3 bits (the number is first rounded to float32). */
export function float8E4M3Bits(value: number): number {
  scratchF32[0] = value;
  return f32BitsToE4M3(scratchU32[0]);
}

/** float32 values -> float8_e4m3 bits (Uint8Array): round to nearest even, saturate to ±448
 * (float8_e4m3 has no infinity; ±Inf saturates too), NaN stays NaN. */
export function toFloat8E4M3(values: Float32Array | ArrayLike<number>): Uint8Array {
  const src = asF32Bits(values);
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToE4M3(src[i]);
  return out;
}

/** float8_e4m3 bits -> float32 values (exact; 0x7f and 0xff are NaN). */
export function fromFloat8E4M3(bits: Uint8Array | ArrayLike<number>): Float32Array {
  const table = float8E4M3Table();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i] & 0xff];
  return out;
}
