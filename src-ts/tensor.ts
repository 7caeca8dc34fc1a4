// tensor.ts — host tensors: a typed array, a shape, and a dtype.
import type { Float16ArrayLike, Float16DType } from './api-types';
import { type ArrayFor, type DType, type HostArray, arrayMatches, arrayNameFor, isDType, isFloat16Array } from './dtype';
import { FlashAttentionError, describeValue } from './errors';

/** A tensor in host memory. Layout is row-major (C order); for attention, [batch, seqlen, heads, headDim].
 * `data` is the typed array of its dtype: Float32Array, or a Uint16Array / Uint8Array of bits. */
export interface HostTensor<D extends DType = DType> {
  readonly data: ArrayFor<D>;
  readonly shape: readonly number[];
  readonly dtype: D;
}

/** What tensor() accepts as data: a host typed array, or a Float16Array where the runtime has one. */
export type TensorData = HostArray | Float16ArrayLike;

/** Number of elements of a shape. @internal */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** Checks that `shape` is an array of non-negative safe integers. @internal */
export function checkShape(shape: unknown, field: string): asserts shape is readonly number[] {
  if (!Array.isArray(shape)) {
    throw new FlashAttentionError('E_SHAPE', `${field} must be an array of integers; got ${describeValue(shape)}`);
  }
  for (let i = 0; i < shape.length; i++) {
    const s = shape[i];
    if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) {
      throw new FlashAttentionError(
        'E_SHAPE',
        `${field}[${i}] must be a non-negative integer; got ${describeValue(s)} (shape ${describeValue(shape)})`,
      );
    }
  }
}

/**
 * Makes a host tensor. The dtype is inferred from a Float32Array ('float32'), an Int32Array
 * ('int32') or a Float16Array ('float16'); a Uint16Array needs 'float16' or 'bfloat16' and a Uint8Array 'float8_e4m3'.
 * The data is not copied. Throws E_DTYPE / E_SHAPE.
 */
export function tensor(data: Float32Array, shape: readonly number[], dtype?: 'float32'): HostTensor<'float32'>;
export function tensor(data: Float16ArrayLike, shape: readonly number[], dtype?: 'float16'): HostTensor<'float16'>;
export function tensor<D extends Float16DType>(data: Uint16Array, shape: readonly number[], dtype: D): HostTensor<D>;
export function tensor(data: Uint8Array, shape: readonly number[], dtype: 'float8_e4m3'): HostTensor<'float8_e4m3'>;
/** With a dtype only known at run time: the data must be that dtype's array. */
export function tensor<D extends DType>(data: ArrayFor<D>, shape: readonly number[], dtype: D): HostTensor<D>;
export function tensor(data: TensorData, shape: readonly number[], dtype?: DType): HostTensor {
  let array: unknown = data;
  let dt: DType | undefined = dtype;
  if (dt !== undefined && !isDType(dt)) {
    throw new FlashAttentionError(
      'E_DTYPE',
      `tensor(): dtype must be one of 'float32', 'float16', 'bfloat16', 'float8_e4m3', 'int32'; got ${describeValue(dt)}`,
    );
  }
  if (isFloat16Array(data)) {
    if (dt !== undefined && dt !== 'float16') {
      throw new FlashAttentionError('E_DTYPE', `tensor(): a Float16Array holds float16 data; got dtype '${dt}'`);
    }
    array = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
    dt = 'float16';
  }
  if (dt === undefined) {
    if (array instanceof Float32Array) dt = 'float32';
    else if (array instanceof Int32Array) dt = 'int32';
    else if (array instanceof Uint16Array) {
      throw new FlashAttentionError(
        'E_DTYPE',
        "tensor(): a Uint16Array holds raw 16-bit floats; pass the dtype: tensor(data, shape, 'float16') or 'bfloat16'",
      );
    } else if (array instanceof Uint8Array) {
      throw new FlashAttentionError(
        'E_DTYPE',
        "tensor(): a Uint8Array holds raw 8-bit floats; pass the dtype: tensor(data, shape, 'float8_e4m3')",
      );
    } else {
      throw new FlashAttentionError(
        'E_DTYPE',
        `tensor(): data must be a Float32Array, or a Uint16Array of float16/bfloat16 bits (with dtype); got ${describeValue(data)}` +
          '. Convert numbers with Float32Array.from(values), or toFloat16()/toBfloat16().',
      );
    }
  }
  if (!arrayMatches(array, dt)) {
    throw new FlashAttentionError(
      'E_DTYPE',
      `tensor(): ${dt} data must be a ${arrayNameFor(dt)}; got ${describeValue(data)}`,
    );
  }
  checkShape(shape, 'tensor(): shape');
  const host = array as HostArray;
  const n = numel(shape);
  if (host.length !== n) {
    throw new FlashAttentionError(
      'E_SHAPE',
      `tensor(): data has ${host.length} elements but shape ${describeValue(shape)} needs ${n}`,
    );
  }
  return Object.freeze({ data: host, shape: Object.freeze([...shape]), dtype: dt });
}

/** True when `value` looks like a host tensor (has data/shape/dtype and is not a DeviceTensor). @internal */
export function isHostTensorLike(value: unknown): value is HostTensor {
  return (
    typeof value === 'object' &&
    value !== null &&
    'data' in value &&
    'shape' in value &&
    'dtype' in value
  );
}
