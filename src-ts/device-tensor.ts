// device-tensor.ts — DeviceTensor: a tensor that lives in GPU memory (wraps the addon's
// DeviceBuffer). flashAttention() given DeviceTensors runs on them and returns DeviceTensors, with
// no copy through host memory.
import type { NativeDeviceBuffer, NativeTensorArg } from './binding';
import { type DType, allocHost, dtypeBytes, isDType } from './dtype';
import { FlashAttentionError, describeValue, rewrap } from './errors';
import { cachedProbe, native, noGpuReason } from './probe';
import { type HostTensor, checkShape, numel, tensor } from './tensor';

// Node 20.4 and older have no Symbol.dispose; Node defines it as Symbol.for('nodejs.dispose')
// later, so using the same symbol keeps `using` working on both.
if (typeof (Symbol as { dispose?: symbol }).dispose !== 'symbol') {
  Object.defineProperty(Symbol, 'dispose', { value: Symbol.for('nodejs.dispose') });
}

function checkDeviceIndex(deviceIndex: unknown, field: string): number {
  if (typeof deviceIndex !== 'number' || !Number.isSafeInteger(deviceIndex) || deviceIndex < 0) {
    throw new FlashAttentionError('E_ARG', `${field} must be a non-negative integer; got ${describeValue(deviceIndex)}`);
  }
  return deviceIndex;
}

/** Throws E_NO_DEVICE unless device `index` is a usable CUDA device. @internal */
export function requireGpu(index: number, what: string): void {
  const reason = noGpuReason(cachedProbe(), index);
  if (reason) throw new FlashAttentionError('E_NO_DEVICE', `${what} needs a CUDA GPU, but ${reason}.`);
}

function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = step;
    step *= shape[i];
  }
  return strides;
}

/**
 * A tensor in GPU memory on one CUDA device. Free it with dispose() (or `using`).
 *
 * A view (view(), or an output laid out through strides) shares its parent's memory: element
 * [i0, i1, ...] lives at offset + Σ ik·strides[k] elements into the parent's buffer. Disposing a
 * view ends the view only; the memory is freed once the parent and every view of it are disposed
 * (and no call that uses them is still running), or when all of them are garbage-collected.
 */
export class DeviceTensor<D extends DType = DType> {
  readonly shape: readonly number[];
  readonly dtype: D;
  /** CUDA device index. */
  readonly device: number;
  /** Element strides per dim (contiguous unless this is a strided view). */
  readonly strides: readonly number[];
  /** Element offset of element [0, ...] in the buffer (0 unless this is a view). */
  readonly offset: number;

  #buffer: NativeDeviceBuffer;
  #root: DeviceTensor | undefined; // the tensor that owns the buffer, for a view
  #disposed = false;
  #inUse = 0; // operations in flight, and live views, that use this buffer
  #contiguous: boolean; // isContiguous, worked out once (shape, strides and offset never change)

  private constructor(
    buffer: NativeDeviceBuffer,
    shape: readonly number[],
    dtype: D,
    view?: { root: DeviceTensor; offset: number; strides: readonly number[] },
  ) {
    this.#buffer = buffer;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.device = buffer.device;
    this.strides = Object.freeze(view ? [...view.strides] : contiguousStrides(shape));
    this.offset = view ? view.offset : 0;
    this.#root = view?.root;
    this.#contiguous = !view || this.#stridesAreContiguous();
  }

  /**
   * A view of this tensor's memory: `shape` with element `strides` (default contiguous; the last
   * must be 1), starting `offset` elements past this tensor's first element. No copy: e.g. q, k
   * and v of a packed [b, s, 3, h, d] buffer, or the first n rows of a KV-cache slab. The view
   * keeps the memory alive (see the class comment for dispose()). Throws E_SHAPE when the view
   * reaches past the buffer.
   */
  view(offset: number, shape: readonly number[], strides?: readonly number[]): DeviceTensor {
    const what = 'DeviceTensor.view()';
    this.assertLive(what);
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
      throw new FlashAttentionError('E_ARG', `${what}: offset must be a non-negative integer (elements); got ${describeValue(offset)}`);
    }
    checkShape(shape, `${what}: shape`);
    const st = strides === undefined ? contiguousStrides(shape) : [...strides];
    if (!Array.isArray(strides ?? st) || st.length !== shape.length || !st.every((x) => Number.isSafeInteger(x) && x >= 0)) {
      throw new FlashAttentionError(
        'E_ARG',
        `${what}: strides must be ${shape.length} non-negative integers (elements), one per dim of shape; got ${describeValue(strides)}`,
      );
    }
    if (shape.length > 0 && st[shape.length - 1] !== 1) {
      throw new FlashAttentionError('E_UNSUPPORTED', `${what}: the last dim must be contiguous (stride 1); got strides ${describeValue(st)}`);
    }
    const start = this.offset + offset;
    let reach = 0;
    for (let i = 0; i < shape.length; i++) reach += (shape[i] - 1) * st[i];
    const capacity = Math.floor(this.#buffer.bytes / dtypeBytes(this.dtype));
    if (numel(shape) > 0 && start + reach + 1 > capacity) {
      throw new FlashAttentionError(
        'E_SHAPE',
        `${what}: shape ${describeValue(shape)} with strides ${describeValue(st)} at element ${start} reaches element ` +
          `${start + reach}, past the end of the buffer (${capacity} ${this.dtype} elements)`,
      );
    }
    const root = this.#root ?? this;
    root.#inUse++;
    return new DeviceTensor(this.#buffer, shape, this.dtype, { root, offset: start, strides: st });
  }

  /** True when the tensor is contiguous and starts at its buffer's first element. */
  get isContiguous(): boolean {
    return this.#contiguous;
  }

  #stridesAreContiguous(): boolean {
    if (this.offset !== 0) return false;
    const c = contiguousStrides(this.shape);
    return this.strides.every((s, i) => s === c[i] || this.shape[i] === 1);
  }

  /** Allocates an uninitialized tensor on device `deviceIndex` (default 0). Throws E_NO_DEVICE / E_OOM. */
  static empty<D extends DType>(shape: readonly number[], dtype: D, deviceIndex = 0): DeviceTensor<D> {
    checkShape(shape, 'DeviceTensor.empty(): shape');
    if (!isDType(dtype)) {
      throw new FlashAttentionError(
        'E_DTYPE',
        `DeviceTensor.empty(): dtype must be 'float16', 'bfloat16', 'float32', 'float8_e4m3' or 'int32'; got ${describeValue(dtype)}`,
      );
    }
    const index = checkDeviceIndex(deviceIndex, 'DeviceTensor.empty(): deviceIndex');
    requireGpu(index, 'DeviceTensor');
    // Zero-size tensors still get a real (1-byte) allocation so every DeviceTensor owns a buffer.
    const bytes = Math.max(1, numel(shape) * dtypeBytes(dtype));
    let buffer: NativeDeviceBuffer;
    try {
      buffer = new (native().DeviceBuffer)(index, bytes);
    } catch (err) {
      throw rewrap(err, 'DeviceTensor.empty()');
    }
    return new DeviceTensor(buffer, shape, dtype);
  }

  /** The tensor as the addon takes it (an acquired buffer). @internal */
  nativeArg(what: string): NativeTensorArg {
    const arg: NativeTensorArg = { data: this.acquire(what), shape: this.shape as number[], dtype: this.dtype };
    if (!this.isContiguous) {
      arg.strides = this.strides as number[];
      arg.offset = this.offset;
    }
    return arg;
  }

  /** Wraps a buffer the addon allocated for an output (it is owned by the new tensor). @internal */
  static fromBuffer(buffer: NativeDeviceBuffer, shape: readonly number[], dtype: DType): DeviceTensor {
    return new DeviceTensor(buffer, shape, dtype);
  }

  /** Copies a host tensor to device `deviceIndex` (default 0). */
  static async from<D extends DType>(host: HostTensor<D>, options: { deviceIndex?: number } = {}): Promise<DeviceTensor<D>> {
    if (typeof host !== 'object' || host === null || !('data' in host)) {
      throw new FlashAttentionError(
        'E_ARG',
        `DeviceTensor.from(): expected a host tensor from tensor(data, shape, dtype); got ${describeValue(host)}`,
      );
    }
    const checked = tensor(host.data, host.shape, host.dtype);
    const t = DeviceTensor.empty(checked.shape, checked.dtype, options.deviceIndex ?? 0);
    try {
      if (checked.data.length > 0) await t.#buffer.upload(checked.data);
    } catch (err) {
      t.dispose();
      throw rewrap(err, 'DeviceTensor.from()');
    }
    return t;
  }

  /** Number of elements. */
  get size(): number {
    return numel(this.shape);
  }

  /** True once dispose() was called. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Copies the data to a new host tensor. */
  async toHost(): Promise<HostTensor<D>> {
    if (this.isContiguous) {
      const data = allocHost(this.dtype, this.size);
      await this.use('toHost()', async (buf) => {
        if (data.length > 0) await buf.download(data);
      });
      return tensor(data, this.shape, this.dtype);
    }
    // A view: download the buffer, then pick the view's elements.
    const all = allocHost(this.dtype, Math.floor(this.#buffer.bytes / dtypeBytes(this.dtype)));
    await this.use('toHost()', (buf) => buf.download(all));
    const data = allocHost(this.dtype, this.size);
    const rank = this.shape.length;
    const idx = new Array<number>(rank).fill(0);
    for (let n = 0; n < data.length; n++) {
      let off = this.offset;
      for (let i = 0; i < rank; i++) off += idx[i] * this.strides[i];
      data[n] = all[off];
      for (let i = rank - 1; i >= 0; i--) {
        if (++idx[i] < this.shape[i]) break;
        idx[i] = 0;
      }
    }
    return tensor(data, this.shape, this.dtype);
  }

  /**
   * Frees the device memory. Idempotent. If an operation that uses this tensor is still running,
   * the memory is freed when it finishes; the tensor cannot be used again either way.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#root) {
      this.#root.release(); // a view ends; the root frees the memory
      return;
    }
    if (this.#inUse === 0) this.#buffer.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Throws E_DISPOSED if disposed. @internal */
  assertLive(what: string): void {
    if (this.#disposed) {
      throw new FlashAttentionError(
        'E_DISPOSED',
        `${what}: this DeviceTensor (${describeValue(this.shape)} ${this.dtype}, device ${this.device}) was disposed; ` +
          'create a new one, and dispose a tensor only after its last use',
      );
    }
  }

  /**
   * Runs `fn` with the native buffer, keeping the memory alive until it settles even if dispose()
   * is called meanwhile. Native errors are rewrapped. @internal
   */
  async use<T>(what: string, fn: (buffer: NativeDeviceBuffer) => Promise<T>): Promise<T> {
    this.acquire(what);
    try {
      return await fn(this.#buffer);
    } catch (err) {
      throw rewrap(err, what);
    } finally {
      this.release();
    }
  }

  /** Marks the tensor in use by an operation (see release()). @internal */
  acquire(what: string): NativeDeviceBuffer {
    this.assertLive(what);
    (this.#root ?? this).#inUse++;
    return this.#buffer;
  }

  /** Ends a use started by acquire(); frees the memory if dispose() was called meanwhile. @internal */
  release(): void {
    const root = this.#root ?? this;
    root.#inUse--;
    if (root.#inUse === 0 && root.#disposed && !root.#buffer.disposed) root.#buffer.dispose();
  }

  toString(): string {
    const view = this.#root ? `, view at ${this.offset} strides ${describeValue(this.strides)}` : '';
    return `DeviceTensor(${describeValue(this.shape)}, ${this.dtype}, cuda:${this.device}${view}${this.#disposed ? ', disposed' : ''})`;
  }
}
