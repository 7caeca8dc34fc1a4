// tensor.ts — host tensors: a typed array, a shape, and a dtype.
import type { Float16ArrayLike, Float16DType } from './api-types';
import {
  type ArrayFor,
  type DType,
  type HostArray,
  arrayMatches,
  arrayNameFor,
  isDType,
  isFloat16Array,
  nativeArray,
} from './dtype';
import { FlashAttentionError, describeValue } from './errors';
import { HOLE, isDetached, ownArray, ownField, typedArrayLength, typedArrayName } from './own';

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

/**
 * Reads `shape` once into a plain frozen array of non-negative safe integers, or throws E_SHAPE
 * naming the element (holes of a sparse array, bigints and inherited elements included). @internal
 */
export function readShape(shape: unknown, field: string, fnPrefix = ''): readonly number[] {
  if (!Array.isArray(shape)) {
    throw new FlashAttentionError('E_SHAPE', `${fnPrefix}${field} must be an array of integers; got ${describeValue(shape)}`);
  }
  const items = ownArray(shape, field);
  for (let i = 0; i < items.length; i++) {
    const s = items[i];
    if (s === HOLE) {
      throw new FlashAttentionError(
        'E_SHAPE',
        `${fnPrefix}${field}[${i}] is missing (a sparse array); every dimension must be given (shape ${describeValue(shape)})`,
      );
    }
    if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) {
      const kind = typeof s === 'bigint' ? ' number (not a bigint: write 1, not 1n)' : '';
      throw new FlashAttentionError(
        'E_SHAPE',
        `${fnPrefix}${field}[${i}] must be a non-negative integer${kind}; got ${describeValue(s)} (shape ${describeValue(shape)})`,
      );
    }
  }
  return Object.freeze(items as number[]);
}

/** Checks that `shape` is an array of non-negative safe integers. @internal */
export function checkShape(shape: unknown, field: string): asserts shape is readonly number[] {
  readShape(shape, field);
}

/** "the ArrayBuffer of `what` was detached" when it was, else undefined. @internal */
export function detachedMessage(data: object, what: string): string | undefined {
  if (!isDetached(data)) return undefined;
  return `${what}'s ArrayBuffer is detached (it was transferred, e.g. by postMessage or structuredClone with transfer), ` +
    'so the array has no elements any more; pass an array whose buffer is still yours';
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
export function tensor(data: Int32Array, shape: readonly number[], dtype?: 'int32'): HostTensor<'int32'>;
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
    array = nativeArray(data);
    dt = 'float16';
  }
  if (dt === undefined) {
    const name = typedArrayName(array);
    if (name === 'Float32Array') dt = 'float32';
    else if (name === 'Int32Array') dt = 'int32';
    else if (name === 'Uint16Array') {
      throw new FlashAttentionError(
        'E_DTYPE',
        "tensor(): a Uint16Array holds raw 16-bit floats; pass the dtype: tensor(data, shape, 'float16') or 'bfloat16'",
      );
    } else if (name === 'Uint8Array') {
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
  const dims = readShape(shape, 'shape', 'tensor(): ');
  const host = array as HostArray;
  const n = numel(dims);
  const length = typedArrayLength(host);
  if (length !== n) {
    const detached = detachedMessage(host, 'tensor(): data');
    if (detached !== undefined) throw new FlashAttentionError('E_ARG', detached);
    throw new FlashAttentionError(
      'E_SHAPE',
      `tensor(): data has ${length} elements but shape ${describeValue(dims)} needs ${n}`,
    );
  }
  return Object.freeze({ data: host, shape: dims, dtype: dt });
}

/** True when `value` has own data/shape/dtype properties (inherited ones do not count). @internal */
export function isHostTensorLike(value: unknown): value is HostTensor {
  if (typeof value !== 'object' || value === null) return false;
  return ['data', 'shape', 'dtype'].every((key) => ownField(value, key, key) !== undefined);
}
