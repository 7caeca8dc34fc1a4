// stream.ts — Stream: calls issued on one Stream run in issue order; calls on different Streams
// may overlap. On CUDA a Stream is a CUDA stream (the calls are enqueued back to back, with no
// host round trip between them); on the CPU backend the calls run one at a time in order.
import type { NativeStream } from './binding';
import './device-tensor'; // Symbol.dispose on Node versions without it
import { FlashAttentionError, describeValue, rewrap } from './errors';
import { native } from './probe';

/**
 * An ordered queue of attention calls on one device. Pass it as `opts.stream`. Calls without a
 * stream use a small pool of default streams per device, so unrelated calls may overlap.
 *
 * dispose() (or `using`) releases the stream; calls already issued still run and settle.
 */
export class Stream {
  /** The CUDA device index the stream's calls run on. */
  readonly device: number;
  #native: NativeStream;

  constructor(deviceIndex = 0) {
    if (typeof deviceIndex !== 'number' || !Number.isSafeInteger(deviceIndex) || deviceIndex < 0) {
      throw new FlashAttentionError('E_ARG', `new Stream(): deviceIndex must be a non-negative integer; got ${describeValue(deviceIndex)}`);
    }
    try {
      this.#native = new (native().Stream)(deviceIndex);
    } catch (err) {
      throw rewrap(err, 'new Stream()');
    }
    this.device = deviceIndex;
  }

  /** True once dispose() was called. */
  get disposed(): boolean {
    return this.#native.disposed;
  }

  /** Releases the stream. Idempotent. Calls already issued on it still complete. */
  dispose(): void {
    this.#native.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** The native stream for a call; E_DISPOSED after dispose(). @internal */
  handle(what: string): NativeStream {
    if (this.#native.disposed) {
      throw new FlashAttentionError('E_DISPOSED', `${what}: the Stream (device ${this.device}) was disposed`);
    }
    return this.#native;
  }

  toString(): string {
    return `Stream(cuda:${this.device}${this.disposed ? ', disposed' : ''})`;
  }
}
