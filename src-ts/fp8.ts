// fp8.ts — quantizeFp8(): a float tensor -> float8_e4m3 bits plus float32 descale factors, the
// inputs flashAttention() takes for fp8 attention (FlashAttention-3's q/k/v_descale convention).
//
// Per (batch, head) — or per tensor — the largest finite magnitude `amax` is mapped to 448, the
// largest e4m3 value: scale = 448 / amax, data = e4m3(x · scale) (round to nearest even,
// saturating), descale = 1 / scale, so x ≈ fromFloat8E4M3(data) · descale.
import type { DeviceTensor } from './device-tensor';
import { type DType, type HostArray, f32BitsToE4M3, toFloat32 } from './dtype';
import { FlashAttentionError, describeValue } from './errors';
import { ownField, ownKeys } from './own';
import { type HostTensor, tensor } from './tensor';
import { readTensorOperand } from './validate';

/** The largest finite float8_e4m3 value. */
export const FLOAT8_E4M3_MAX = 448;

/** Options of quantizeFp8(). */
export interface QuantizeFp8Options {
  /** 'head' (default): one descale per (batch, head); 'tensor': one for the whole tensor, repeated
   * over [batch, heads]. */
  granularity?: 'tensor' | 'head';
  /** Dim order of `t`: 'bshd' [batch, seqlen, heads, headDim] (default) or 'bhsd'. */
  layout?: 'bshd' | 'bhsd';
}

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

function readOptions(options: unknown): Required<QuantizeFp8Options> {
  const out: Required<QuantizeFp8Options> = { granularity: 'head', layout: 'bshd' };
  if (options === undefined) return out;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    fail('E_ARG', `options must be an object; got ${describeValue(options)}`);
  }
  for (const key of ownKeys(options, 'options')) {
    if (key !== 'granularity' && key !== 'layout') fail('E_ARG', `unknown option '${key}'; valid options: granularity, layout`);
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
  return out;
}

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
): { bits: Uint8Array; descale: Float32Array } {
  const [b, a1, a2, d] = shape;
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
          bits[base + c] = f32BitsToE4M3(U32[0]);
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
 * value ≈ fromFloat8E4M3(data) · descale. NaN stays NaN and ±Inf saturates to ±448 (neither
 * counts toward the scale).
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
  if (o.kind === 'device') {
    fail(
      'E_UNSUPPORTED',
      'DeviceTensors are not quantized on the device yet; download with await t.toHost(), quantize, and upload ' +
        'data and descale with DeviceTensor.from()',
    );
  }
  const values = toFloat32(o.data as HostArray, o.dtype);
  const { bits, descale } = quantizeHost(values, o.shape, opts.granularity, opts.layout);
  return {
    data: tensor(bits, [...o.shape], 'float8_e4m3'),
    descale: tensor(descale, [o.shape[0], heads], 'float32'),
  };
}
