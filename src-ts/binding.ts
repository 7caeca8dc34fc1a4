// binding.ts — the one typed view of the compiled addon (src-ts/load.ts finds and loads the file).
//
// Everything the native module exports is declared in NativeBinding below; test/binding.test.ts
// compares Object.keys(binding) with this list so the two cannot drift apart.
import { loadedAddon, loadedAddonInfo } from './load';

/** dtype names as they cross the boundary. */
export type NativeDType = 'float32' | 'float16' | 'bfloat16' | 'float8_e4m3' | 'int32';

/** Host typed arrays the addon accepts: Float32Array for float32, Uint16Array of bits for
 * float16/bfloat16, Uint8Array of bits for float8_e4m3, Int32Array for int32. */
export type NativeHostArray = Float32Array | Uint16Array | Uint8Array | Int32Array;

/**
 * A device allocation owned by the addon (cudaMalloc on one device). Its size is reported to V8
 * with AdjustExternalMemory. dispose() is idempotent; the finalizer frees it too.
 * @internal
 */
export interface NativeDeviceBuffer {
  readonly device: number;
  readonly bytes: number;
  readonly disposed: boolean;
  dispose(): void;
  /** Copies host bytes in (asynchronous; resolves when the copy has finished). */
  upload(src: NativeHostArray): Promise<void>;
  /** Copies device bytes out into `dst` (asynchronous; resolves when the copy has finished). */
  download(dst: NativeHostArray): Promise<void>;
}

/** @internal */
export interface NativeDeviceBufferConstructor {
  /** Allocates `bytes` on CUDA device `device`. Throws E_OOM / E_NO_DEVICE / E_CUDA. */
  new (device: number, bytes: number): NativeDeviceBuffer;
}

/** An ordered queue of calls on one device (a CUDA stream underneath). @internal */
export interface NativeStream {
  readonly device: number;
  readonly disposed: boolean;
  dispose(): void;
}

/** @internal */
export interface NativeStreamConstructor {
  new (device: number): NativeStream;
}

/** One tensor argument: host data or a device buffer, with its shape and dtype. @internal */
export interface NativeTensorArg {
  data: NativeHostArray | NativeDeviceBuffer;
  shape: number[];
  dtype: NativeDType;
  /** Element strides per dim (default contiguous); the last must be 1. */
  strides?: number[];
  /** Element offset into a DeviceBuffer (a view); host arrays use subarray() instead. */
  offset?: number;
}

/** Options every attention request carries. @internal */
export interface NativeCommon {
  /** 'cpu' runs the CPU backend on host arrays; 'cuda' runs kernels on `device`. */
  backend: 'cpu' | 'cuda';
  /** CUDA device index (ignored for cpu). */
  device: number;
  scale: number;
  /** -1 means unbounded. Causal is windowRight = 0. */
  windowLeft: number;
  windowRight: number;
  /** CPU threads; 0 = one per hardware thread. */
  threads: number;
  /** Calls on one stream run in issue order; absent: a default stream of the device. */
  stream?: NativeStream;
  /** Fill the outputs with NaN bits before the backend runs (tests: an unwritten element shows). */
  poison?: boolean;
}

/**
 * Forward request. `out` (q's shape and dtype; bf16 for fp8) and `lse` (float32, [b, h, s_q]) are
 * optional: given, they are written in place; absent, the addon allocates them (stream-ordered
 * device memory for DeviceBuffers, new typed arrays for host data) and the promise resolves to
 * them. Host inputs are copied when the call starts; host outputs are written when it settles.
 * @internal
 */
export interface NativeForwardRequest extends NativeCommon {
  q: NativeTensorArg;
  k: NativeTensorArg;
  v: NativeTensorArg;
  out?: NativeTensorArg;
  lse?: NativeTensorArg;
  /** Materialize the full score matrix instead (the benchmark's "standard attention"). */
  naive: boolean;
  /** float8_e4m3 only: float32 descale factors, q [batch, headsQ], k and v [batch, headsKV]
   * (absent means 1), and the dtype of out ('bfloat16' when absent, or 'float16'). */
  qDescale?: NativeTensorArg;
  kDescale?: NativeTensorArg;
  vDescale?: NativeTensorArg;
  outDtype?: NativeDType;
}

/** Backward request; dq/dk/dv are optional like the forward's outputs. @internal */
export interface NativeBackwardRequest extends NativeCommon {
  dout: NativeTensorArg;
  q: NativeTensorArg;
  k: NativeTensorArg;
  v: NativeTensorArg;
  out: NativeTensorArg;
  lse: NativeTensorArg;
  dq?: NativeTensorArg;
  dk?: NativeTensorArg;
  dv?: NativeTensorArg;
  deterministic: boolean;
}

/**
 * KV-cache request (flash-attn's flash_attn_with_kvcache). Host arrays run on the CPU backend:
 * every input and both caches are copied when the call starts; when it settles, out/lse are
 * written (or returned) and the positions kNew/vNew were appended at are written into the caller's
 * kCache/vCache arrays. DeviceBuffers: the caches are updated in place, in stream order.
 * @internal
 */
export interface NativeKvCacheRequest extends NativeCommon {
  /** [batch, seqlenQ, headsQ, headDim] */
  q: NativeTensorArg;
  /** [batchCache, maxSeqlen, headsKV, headDim], or paged [numBlocks, pageSize, headsKV, headDim]. */
  kCache: NativeTensorArg;
  vCache: NativeTensorArg;
  /** int32 [batch]: tokens already in each row's cache. */
  cacheSeqlens: NativeTensorArg;
  /** [batch, seqlenNew, headsKV, headDim], appended at cacheSeqlens[b] before attending. */
  kNew?: NativeTensorArg;
  vNew?: NativeTensorArg;
  /** int32 [batch, maxBlocksPerSeq]: a paged cache's physical block of each row's pages. */
  blockTable?: NativeTensorArg;
  /** int32 [batch]: the cache row of each batch row (contiguous caches). */
  cacheBatchIdx?: NativeTensorArg;
  /** q's dtype, [rotarySeqlen, rotaryDim / 2]. */
  rotaryCos?: NativeTensorArg;
  rotarySin?: NativeTensorArg;
  rotaryInterleaved?: boolean;
  out?: NativeTensorArg;
  lse?: NativeTensorArg;
}

/** What the varlen requests (flash-attn's flash_attn_varlen_func and its backward) add to the
 * forward and backward ones. Their q, out, dout, dq are packed [totalQ, headsQ, headDim], k, v,
 * dk, dv [totalK, headsKV, headDim], lse float32 [headsQ, totalQ]; sequence b is rows
 * cuSeqlensQ[b] .. cuSeqlensQ[b + 1] - 1 of q (cuSeqlensK likewise of k and v). Host arrays only
 * for now (backend 'cpu'). @internal */
export interface NativeVarlenFields {
  /** int32 [batch + 1]: 0 first, non-decreasing, the total last. */
  cuSeqlensQ: NativeTensorArg;
  cuSeqlensK: NativeTensorArg;
  /** At least the longest sequence when given (checked). */
  maxSeqlenQ?: number;
  maxSeqlenK?: number;
}
/** @internal */
export interface NativeVarlenForwardRequest
  extends Omit<NativeForwardRequest, 'naive' | 'qDescale' | 'kDescale' | 'vDescale' | 'outDtype'>,
    NativeVarlenFields {}
/** @internal */
export interface NativeVarlenBackwardRequest extends NativeBackwardRequest, NativeVarlenFields {}

/** What a call resolves to: each output, the addon's own when it allocated it, else the caller's
 * host array (or undefined for a caller's DeviceBuffer, written in place). @internal */
export type NativeOutput = NativeHostArray | NativeDeviceBuffer | undefined;
/** @internal */
export interface NativeForwardResult {
  out: NativeOutput;
  lse: NativeOutput;
}
/** @internal */
export interface NativeBackwardResult {
  dq: NativeOutput;
  dk: NativeOutput;
  dv: NativeOutput;
}

/** @internal */
export interface NativeDeviceReport {
  index: number;
  name: string;
  capability: [number, number];
  smCount: number;
  totalMemory: number;
  freeMemory: number;
  /** Kernel paths this device can run, best first, e.g. ['sm80']. Empty: none. */
  paths: string[];
}

/** @internal */
export interface NativeProbeReport {
  /** Which addon build is loaded. */
  build: 'cuda' | 'cpu';
  /** CUDA archs compiled into the addon, e.g. ['sm_80', 'sm_90a']; empty in the CPU build. */
  compiledArchs: string[];
  /** cudaRuntimeGetVersion / cudaDriverGetVersion, e.g. 13000; 0 when absent. */
  cudaRuntimeVersion: number;
  cudaDriverVersion: number;
  /** Why no CUDA device is usable; '' when at least one is. */
  cudaError: string;
  devices: NativeDeviceReport[];
  /** Threads the CPU backend uses by default. */
  cpuThreads: number;
}

/** Which kernel runs a request: the same function dispatch uses. @internal */
export interface NativeSelectRequest {
  op: 'forward' | 'backward';
  device: number;
  dtype: NativeDType;
  headDim: number;
  seqlenQ: number;
  seqlenK: number;
  headsQ: number;
  headsKV: number;
  windowLeft: number;
  windowRight: number;
  /** Default 1/sqrt(headDim). */
  scale?: number;
  /** Default 1. */
  batch?: number;
  deterministic?: boolean;
}

/** The plan (cuda/plan/): which kernel runs a request, or 'none' and why. @internal */
export interface NativeSelection {
  /** 'sm80', 'sm90', or 'none'. */
  path: string;
  /** The compiled head dim that runs it (>= headDim); 0 for none. */
  kernelHeadDim: number;
  /** The sm80 forward tile: 'full', 'masked', 'compact', or 'none'. */
  tile?: string;
  /** A forward of a few query rows that runs on the split-KV decode kernels (cuda/decode/)
   * instead of the path's prefill kernel. */
  decode?: boolean;
  /** Key-dimension splits (1: none). */
  splits?: number;
  /** Device workspace the kernels take, in bytes. */
  workspaceBytes?: number;
  /** Why not, when path is 'none'. */
  reason: string;
}

/** planFor(): the plan for a hypothetical device and build (no GPU needed). @internal */
export interface NativePlanForRequest extends NativeSelectRequest {
  /** [major, minor], e.g. [9, 0]. */
  capability: [number, number];
  /** A CMake CUDA_ARCHITECTURES list, e.g. '80;90a'. */
  archs: string;
  /** Opt-in shared memory per block; default: the known value for the capability. */
  smemOptin?: number;
  /** Like FLASHATTN_KERNEL_PATH. */
  forcePath?: '' | 'sm80' | 'sm90';
  /** SMs of the device (the decode route's split count); default 0 (one split). */
  smCount?: number;
}

/** @internal */
export interface NativePlanForResult extends NativeSelection {
  /** What probe() would list for such a device: paths it can run, best first. */
  devicePaths: string[];
  /** Why devicePaths is empty. */
  devicePathsReason: string;
}

/** @internal */
export interface NativeBenchRequest {
  op: 'forward' | 'backward';
  naive: boolean;
  device: number;
  dtype: NativeDType;
  batch: number;
  seqlenQ: number;
  seqlenK: number;
  headsQ: number;
  headsKV: number;
  headDim: number;
  scale: number;
  windowLeft: number;
  windowRight: number;
  deterministic: boolean;
  warmup: number;
  iters: number;
}

/** One decode shape: q [batch, seqlenQ, headsQ, headDim] against a cache of headsKV heads. @internal */
export interface NativeDecodeShape {
  dtype: NativeDType;
  batch: number;
  seqlenQ: number;
  headsQ: number;
  headsKV: number;
  headDim: number;
}

/** binding.planDecode: one decode shape on a real device ({device}) or a hypothetical one. @internal */
export interface NativePlanDecodeRequest extends NativeDecodeShape {
  /** Keys each cache row holds (the split heuristic plans for a full cache). */
  capacity: number;
  windowLeft?: number;
  windowRight?: number;
  device?: number;
  capability?: [number, number];
  smCount?: number;
  smemOptin?: number;
  archs?: string;
}

/** @internal */
export interface NativeDecodePlan {
  ok: boolean;
  reason: string;
  splits: number;
  workspaceBytes: number;
  tileRows: number;
  smemBytes: number;
}

/** binding.benchDecode: one decode shape, every cache row at `context` keys. @internal */
export interface NativeDecodeBenchRequest extends NativeDecodeShape {
  device: number;
  context: number;
  /** 0: contiguous cache; else keys per block of a paged cache (shuffled block table). */
  pageSize: number;
  /** Each run reads a cache copy the run before did not leave in the L2 (else one cache, L2-warm when it fits). */
  coldL2: boolean;
  /** 0: the split heuristic's count (what the API uses); else this many splits (1..256). */
  numSplits: number;
  warmup: number;
  iters: number;
}

export interface NativeBenchResult {
  /** CUDA-event time of each timed iteration, in milliseconds. */
  ms: number[];
  /** Device memory beyond inputs and outputs at its peak, in bytes. */
  peakExtraBytes: number;
  /** What ran, e.g. 'sm80 fwd d128 bf16'. */
  kernel: string;
  /** Median host time of one timed iteration's enqueue (the launch path), in microseconds. */
  hostLaunchUs?: number;
}

/**
 * Every export of the native module.
 * @internal
 */
/** quantizeFp8 on the device (cuda/quant/): `t` a DeviceBuffer tensor of float32/float16/bfloat16,
 * 4-D in `layout`. Resolves to new DeviceBuffers: e4m3 bits of t's shape and float32 descale
 * [batch, heads]. The CPU-only build rejects it with E_NO_DEVICE. @internal */
export interface NativeQuantizeFp8Request {
  t: NativeTensorArg;
  device: number;
  layout: 'bshd' | 'bhsd';
  granularity: 'tensor' | 'head';
  hadamard: boolean;
  stream?: NativeStream;
}

export interface NativeBinding {
  /** Version of the addon (matches package.json). */
  version: string;
  probe(): NativeProbeReport;
  select(req: NativeSelectRequest): NativeSelection;
  /** Plans for a hypothetical device and build: the same function dispatch and probe() use. */
  planFor(req: NativePlanForRequest): NativePlanForResult;
  forward(req: NativeForwardRequest): Promise<NativeForwardResult>;
  /** forward(req) with the request flattened (src-ts/flat.ts, native/request/flat.h): no property
   * reads in the addon. Data undefined where the request has no such tensor. */
  forwardFlat(
    header: Float64Array,
    stream: NativeStream | undefined,
    q: NativeTensorArg['data'],
    k: NativeTensorArg['data'],
    v: NativeTensorArg['data'],
    out?: NativeTensorArg['data'],
    lse?: NativeTensorArg['data'],
    qDescale?: NativeTensorArg['data'],
    kDescale?: NativeTensorArg['data'],
    vDescale?: NativeTensorArg['data'],
  ): Promise<NativeForwardResult>;
  backward(req: NativeBackwardRequest): Promise<NativeBackwardResult>;
  /** Settles the GPU calls that have completed and returns how many are still in flight; `more`
   * says the caller polls again soon (src-ts/spin.ts), false ends that. */
  poll(more: boolean): number;
  /** flashAttentionWithKVCache: append (optional), then attend to each row's cache. */
  kvcache(req: NativeKvCacheRequest): Promise<NativeForwardResult>;
  /** flashAttentionVarlen / flashAttentionVarlenBackward: packed sequences of different lengths. */
  varlenForward(req: NativeVarlenForwardRequest): Promise<NativeForwardResult>;
  varlenBackward(req: NativeVarlenBackwardRequest): Promise<NativeBackwardResult>;
  quantizeFp8(req: NativeQuantizeFp8Request): Promise<{ data: NativeDeviceBuffer; descale: NativeDeviceBuffer }>;
  /** The decode path's plan (cuda/plan/decode_plan.h) for one shape on a real or hypothetical device. */
  planDecode(req: NativePlanDecodeRequest): NativeDecodePlan;
  /** Times a kernel on random device data with CUDA events (CUDA build with a GPU only). */
  bench(req: NativeBenchRequest): Promise<NativeBenchResult>;
  /** Times the split-KV decode kernels the same way (each run reads a cache copy not in L2). */
  benchDecode(req: NativeDecodeBenchRequest): Promise<NativeBenchResult>;
  DeviceBuffer: NativeDeviceBufferConstructor;
  Stream: NativeStreamConstructor;
}

/** The names of NativeBinding, kept in sync by test/binding.test.ts. @internal */
export const NATIVE_EXPORTS: ReadonlyArray<keyof NativeBinding> = [
  'version',
  'probe',
  'select',
  'forward',
  'forwardFlat',
  'backward',
  'poll',
  'kvcache',
  'varlenForward',
  'varlenBackward',
  'bench',
  'benchDecode',
  'planFor',
  'planDecode',
  'quantizeFp8',
  'DeviceBuffer',
  'Stream',
];

/** Loads the addon once (src-ts/load.ts finds the file: FLASHATTN_BINARY, a local build, then the
 * platform package); throws an Error that lists what was tried and how to fix it. @internal */
export function binding(): NativeBinding {
  return loadedAddon<NativeBinding>((b) => b.probe().build).module;
}

/** The file the addon was loaded from, once loaded. @internal */
export function bindingPath(): string | undefined {
  return loadedAddonInfo()?.file;
}
