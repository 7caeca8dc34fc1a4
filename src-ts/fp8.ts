// fp8.ts — quantizeFp8(): a float tensor -> float8_e4m3 bits plus float32 descale factors, the
// inputs flashAttention() takes for fp8 attention (FlashAttention-3's q/k/v_descale convention).
//
// Per (batch, head) — or per tensor — the largest finite magnitude `amax` is mapped to 448, the
// largest e4m3 value: scale = 448 / amax, data = e4m3(x · scale) (round to nearest even,
// saturating), descale = 1 / scale, so x ≈ fromFloat8E4M3(data) · descale.
import type { NativeDeviceBuffer } from './binding';
import { DeviceTensor } from './device-tensor';
import { type DType, type HostArray, f32BitsToE4M3, toFloat32 } from './dtype';
import { FlashAttentionError, describeValue, rewrap } from './errors';
import { ownField, ownKeys } from './own';
import { native } from './probe';
import { type HostTensor, tensor } from './tensor';
import { readTensorOperand } from './validate';
import { polled } from './spin';

/** The largest finite float8_e4m3 value. */
export const FLOAT8_E4M3_MAX = 448;

/** Options of quantizeFp8(). */
export interface QuantizeFp8Options {
  /** 'head' (default): one descale per (batch, head); 'tensor': one for the whole tensor, repeated
   * over [batch, heads]. */
  granularity?: 'tensor' | 'head';
  /** Dim order of `t`: 'bshd' [batch, seqlen, heads, headDim] (default) or 'bhsd'. */
  layout?: 'bshd' | 'bhsd';
  /**
   * Rotate each headDim vector by a fixed randomized Hadamard transform R = H·diag(signs)/sqrt(d)
   * before quantizing (default false; headDim 64, 128 or 256). Use it on BOTH q and k, never on v:
   * R is orthogonal, so (R q)·(R k) = q·k and the attention result is unchanged in exact arithmetic,
   * while outliers are spread over all d coordinates and lose less to e4m3 rounding (the
   * FlashAttention-3 "incoherent processing"; on its outlier benchmark, in a CPU simulation of our
   * fp8 kernel, the output error drops from 2.0e-2 to 9.0e-3: docs/perf-notes.md). R is the same in every call (deterministic signs, see HADAMARD_SEED), so q
   * and k quantized in separate calls, on the host or the device, get the same rotation. v must
   * not be rotated: the output would come out rotated.
   */
  hadamard?: boolean;
}

/**
 * The sign rule of the hadamard option: sign_i = -1 where bit 31 of fmix32(i + HADAMARD_SEED) is
 * set (MurmurHash3's 32-bit finalizer), for i = 0 .. headDim-1; H is the Sylvester Hadamard matrix,
 * H[j][i] = (-1)^popcount(i & j). cuda/quant/e4m3.h holds the same constants.
 */
export const HADAMARD_SEED = 0x2545f491;

/** Result of quantizeFp8(): e4m3 data of the input's shape and kind, and float32 descale
 * factors [batch, heads] (a host Float32Array tensor, or a DeviceTensor for device input). */
export interface QuantizedFp8<T> {
  data: T;
  descale: T extends DeviceTensor ? DeviceTensor<'float32'> : HostTensor<'float32'>;
}

const FN = 'quantizeFp8';

function fail(code: 'E_ARG' | 'E_DTYPE' | 'E_SHAPE' | 'E_UNSUPPORTED', message: string): never {
  throw new FlashAttentionError(code, `${FN}: ${message}`);
}

const OPTION_NAMES = ['granularity', 'layout', 'hadamard'];

function readOptions(options: unknown): Required<QuantizeFp8Options> {
  const out: Required<QuantizeFp8Options> = { granularity: 'head', layout: 'bshd', hadamard: false };
  if (options === undefined) return out;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    fail('E_ARG', `options must be an object; got ${describeValue(options)}`);
  }
  for (const key of ownKeys(options, 'options')) {
    if (!OPTION_NAMES.includes(key)) fail('E_ARG', `unknown option '${key}'; valid options: ${OPTION_NAMES.join(', ')}`);
  }
  const g = ownField(options, 'granularity', 'options.granularity');
  if (g !== undefined) {
    if (g !== 'tensor' && g !== 'head') fail('E_ARG', `granularity must be 'tensor' or 'head'; got ${describeValue(g)}`);
    out.granularity = g;
  }
  const l = ownField(options, 'layout', 'options.layout');
  if (l !== undefined) {
    if (l !== 'bshd' && l !== 'bhsd') fail('E_ARG', `layout must be 'bshd' or 'bhsd'; got ${describeValue(l)}`);
    out.layout = l;
  }
  const hd = ownField(options, 'hadamard', 'options.hadamard');
  if (hd !== undefined) {
    if (typeof hd !== 'boolean') fail('E_ARG', `hadamard must be true or false; got ${describeValue(hd)}`);
    out.hadamard = hd;
  }
  return out;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Head dims the hadamard option takes. */
export const HADAMARD_HEAD_DIMS: ReadonlyArray<number> = [64, 128, 256];

/**
 * The hadamard option's rotation of every row of `d` values, in place, in float32 (each step
 * rounded as cuda/quant/e4m3.h hadamard_row rounds it, so host and device agree bit for bit):
 * signs, butterflies (a, b) -> (a + b, a - b) for h = 1, 2, ..., d/2, then one multiply by
 * float32(1/sqrt(d)). @internal
 */
export function hadamardRotate(values: Float32Array, d: number): Float32Array {
  if (!HADAMARD_HEAD_DIMS.includes(d)) {
    throw new FlashAttentionError('E_ARG', `hadamard rotation needs headDim 64, 128 or 256; got ${d}`);
  }
  const flip: boolean[] = [];
  for (let i = 0; i < d; i++) flip.push(fmix32((i + HADAMARD_SEED) >>> 0) >>> 31 === 1);
  const norm = Math.fround(1 / Math.sqrt(d));
  const f = Math.fround;
  for (let base = 0; base + d <= values.length; base += d) {
    for (let i = 0; i < d; i++) if (flip[i]) values[base + i] = -values[base + i];
    for (let h = 1; h < d; h *= 2) {
      for (let j0 = 0; j0 < d; j0 += 2 * h) {
        for (let j = base + j0; j < base + j0 + h; j++) {
          const a = values[j];
          const b = values[j + h];
          values[j] = f(a + b);
          values[j + h] = f(a - b);
        }
      }
    }
    for (let i = 0; i < d; i++) values[base + i] = f(values[base + i] * norm);
  }
  return values;
}

/** The NaN code quantizeFp8 writes (sign bit clear, whatever the input NaN's sign). */
const E4M3_NAN = 0x7f;
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/**
 * Host quantization. `values` is [b, s, h, d] ('bshd') or [b, h, s, d] ('bhsd'), row-major.
 * Returns e4m3 bits in the same order and descale [b, h]. @internal
 */
export function quantizeHost(
  values: Float32Array,
  shape: readonly number[],
  granularity: 'tensor' | 'head',
  layout: 'bshd' | 'bhsd' = 'bshd',
  hadamard = false,
): { bits: Uint8Array; descale: Float32Array } {
  const [b, a1, a2, d] = shape;
  if (hadamard) values = hadamardRotate(Float32Array.from(values), d);
  const [s, h] = layout === 'bshd' ? [a1, a2] : [a2, a1];
  // Element (bi, si, hi, c) lives at bi·bStride + si·sStride + hi·hStride + c.
  const hStride = layout === 'bshd' ? d : s * d;
  const sStride = layout === 'bshd' ? h * d : d;
  const bStride = s * h * d;
  const amax = new Float64Array(b * h);
  for (let bi = 0; bi < b; bi++) {
    for (let hi = 0; hi < h; hi++) {
      let m = 0;
      for (let si = 0; si < s; si++) {
        const base = bi * bStride + si * sStride + hi * hStride;
        for (let c = 0; c < d; c++) {
          const x = Math.abs(values[base + c]);
          if (x > m && x !== Infinity) m = x; // NaN compares false: skipped, like Inf
        }
      }
      amax[bi * h + hi] = m;
    }
  }
  if (granularity === 'tensor') {
    let m = 0;
    for (const x of amax) m = Math.max(m, x);
    amax.fill(m);
  }
  // scale in float32 (what the values are multiplied by); descale its float32 reciprocal. An
  // all-zero head keeps scale 1. A tiny amax could overflow 448 / amax: cap the scale at
  // float32's largest power of two.
  const scale = new Float32Array(b * h);
  const descale = new Float32Array(b * h);
  for (let i = 0; i < b * h; i++) {
    const sc = amax[i] > 0 ? Math.min(FLOAT8_E4M3_MAX / amax[i], 2 ** 127) : 1;
    scale[i] = sc;
    descale[i] = 1 / scale[i];
  }
  const bits = new Uint8Array(values.length);
  for (let bi = 0; bi < b; bi++) {
    for (let hi = 0; hi < h; hi++) {
      const sc = scale[bi * h + hi];
      for (let si = 0; si < s; si++) {
        const base = bi * bStride + si * sStride + hi * hStride;
        for (let c = 0; c < d; c++) {
          F32[0] = values[base + c] * sc;
          bits[base + c] = F32[0] !== F32[0] ? E4M3_NAN : f32BitsToE4M3(U32[0]); // every NaN as 0x7f
        }
      }
    }
  }
  return { bits, descale };
}

/**
 * Quantizes a float32 / float16 / bfloat16 attention tensor ([batch, seqlen, heads, headDim], or
 * 'bhsd') to float8_e4m3 with descale factors, for flashAttention(q, k, v, { descale }).
 * `data` has `t`'s shape and kind; `descale` is float32 [batch, heads] with
 * value ≈ fromFloat8E4M3(data) · descale. NaN stays NaN (written as 0x7f) and ±Inf saturates
 * to ±448 (neither counts toward the scale). With `hadamard: true` the rows are rotated first
 * (see QuantizeFp8Options.hadamard; then value ≈ R⁻¹(fromFloat8E4M3(data) · descale), and a NaN
 * or Inf spreads over its row). A DeviceTensor is quantized on its device by CUDA kernels, with
 * the same float32 steps: the result is bit-identical to the host's.
 */
export async function quantizeFp8(t: HostTensor, options?: QuantizeFp8Options): Promise<QuantizedFp8<HostTensor<'float8_e4m3'>>>;
export async function quantizeFp8(t: DeviceTensor, options?: QuantizeFp8Options): Promise<QuantizedFp8<DeviceTensor<'float8_e4m3'>>>;
export async function quantizeFp8(
  t: HostTensor | DeviceTensor,
  options?: QuantizeFp8Options,
): Promise<QuantizedFp8<HostTensor<'float8_e4m3'>> | QuantizedFp8<DeviceTensor<'float8_e4m3'>>> {
  const opts = readOptions(options);
  const o = readTensorOperand(FN, 't', t);
  if (o.shape.length !== 4) {
    fail('E_SHAPE', `t must be 4-D [batch, seqlen, heads, headDim] (or 'bhsd'); got shape ${describeValue(o.shape)}`);
  }
  const allowed: DType[] = ['float32', 'float16', 'bfloat16'];
  if (!allowed.includes(o.dtype)) {
    fail('E_DTYPE', `t.dtype must be 'float32', 'float16' or 'bfloat16'; got '${o.dtype}'`);
  }
  const heads = opts.layout === 'bshd' ? o.shape[2] : o.shape[1];
  if (opts.hadamard && !HADAMARD_HEAD_DIMS.includes(o.shape[3])) {
    fail('E_ARG', `hadamard: true needs headDim 64, 128 or 256 (a power of two); got headDim ${o.shape[3]}`);
  }
  if (o.kind === 'device') return quantizeDevice(o.value as DeviceTensor, o.shape, heads, opts);
  const values = toFloat32(o.data as HostArray, o.dtype);
  const { bits, descale } = quantizeHost(values, o.shape, opts.granularity, opts.layout, opts.hadamard);
  return {
    data: tensor(bits, [...o.shape], 'float8_e4m3'),
    descale: tensor(descale, [o.shape[0], heads], 'float32'),
  };
}

/** The device path: the addon's kernels (cuda/quant/), outputs in new DeviceTensors. */
async function quantizeDevice(
  t: DeviceTensor,
  shape: readonly number[],
  heads: number,
  opts: Required<QuantizeFp8Options>,
): Promise<QuantizedFp8<DeviceTensor<'float8_e4m3'>>> {
  let res: { data: NativeDeviceBuffer; descale: NativeDeviceBuffer };
  try {
    const arg = t.nativeArg(FN); // acquired before the first await: t may be disposed meanwhile
    try {
      res = await polled(
        native().quantizeFp8({
          t: arg,
          device: t.device,
          layout: opts.layout,
          granularity: opts.granularity,
          hadamard: opts.hadamard,
        }),
      );
    } finally {
      t.release();
    }
  } catch (e) {
    throw rewrap(e, FN);
  }
  return {
    data: DeviceTensor.fromBuffer(res.data, [...shape], 'float8_e4m3') as DeviceTensor<'float8_e4m3'>,
    descale: DeviceTensor.fromBuffer(res.descale, [shape[0], heads], 'float32') as DeviceTensor<'float32'>,
  };
}
