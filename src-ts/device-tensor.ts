// device-tensor.ts — DeviceTensor: a tensor that lives in GPU memory (wraps the addon's
// DeviceBuffer). flashAttention() given DeviceTensors runs on them and returns DeviceTensors, with
// no copy through host memory.
import type { NativeDeviceBuffer } from './binding';
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

/** A tensor in GPU memory on one CUDA device. Free it with dispose() (or `using`). */
export class DeviceTensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** CUDA device index. */
  readonly device: number;

  #buffer: NativeDeviceBuffer;
  #disposed = false;
  #inUse = 0; // operations in flight that read or write this buffer

  private constructor(buffer: NativeDeviceBuffer, shape: readonly number[], dtype: DType) {
    this.#buffer = buffer;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.device = buffer.device;
  }

  /** Allocates an uninitialized tensor on device `deviceIndex` (default 0). Throws E_NO_DEVICE / E_OOM. */
  static empty(shape: readonly number[], dtype: DType, deviceIndex = 0): DeviceTensor {
    checkShape(shape, 'DeviceTensor.empty(): shape');
    if (!isDType(dtype)) {
      throw new FlashAttentionError(
        'E_DTYPE',
        `DeviceTensor.empty(): dtype must be 'float16', 'bfloat16', 'float32' or 'float8_e4m3'; got ${describeValue(dtype)}`,
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

  /** Wraps a buffer the addon allocated for an output (it is owned by the new tensor). @internal */
  static fromBuffer(buffer: NativeDeviceBuffer, shape: readonly number[], dtype: DType): DeviceTensor {
    return new DeviceTensor(buffer, shape, dtype);
  }

  /** Copies a host tensor to device `deviceIndex` (default 0). */
  static async from(host: HostTensor, options: { deviceIndex?: number } = {}): Promise<DeviceTensor> {
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
  async toHost(): Promise<HostTensor> {
    const data = allocHost(this.dtype, this.size);
    await this.use('toHost()', async (buf) => {
      if (data.length > 0) await buf.download(data);
    });
    return tensor(data, this.shape, this.dtype);
  }

  /**
   * Frees the device memory. Idempotent. If an operation that uses this tensor is still running,
   * the memory is freed when it finishes; the tensor cannot be used again either way.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
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
    this.assertLive(what);
    this.#inUse++;
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
    this.#inUse++;
    return this.#buffer;
  }

  /** Ends a use started by acquire(); frees the memory if dispose() was called meanwhile. @internal */
  release(): void {
    this.#inUse--;
    if (this.#inUse === 0 && this.#disposed && !this.#buffer.disposed) this.#buffer.dispose();
  }

  toString(): string {
    return `DeviceTensor(${describeValue(this.shape)}, ${this.dtype}, cuda:${this.device}${this.#disposed ? ', disposed' : ''})`;
  }
}
