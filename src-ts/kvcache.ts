// kvcache.ts — flashAttentionWithKVCache(): flash-attn's flash_attn_with_kvcache for Node
// inference servers. Reads the user's options (own properties only), picks the backend from the
// tensors' kind, allocates host outputs, and hands one request to the addon, which checks every
// shape, dtype and int32 value (native/kvcache/kv_request.cpp) and runs it.
import type { AttentionResult } from './api-types';
import type { NativeDType, NativeKvCacheRequest, NativeStream, NativeTensorArg } from './binding';
import { DeviceTensor } from './device-tensor';
import { type DType, allocHost, nativeArray } from './dtype';
import { FlashAttentionError, describeValue, rewrap } from './errors';
import { ownArray, ownField, ownKeys } from './own';
import { cachedProbe, native, noGpuReason } from './probe';
import { Stream } from './stream';
import { type HostTensor, tensor } from './tensor';
import { type AnyTensor, type AttentionOptions, MAX_SOFTMAX_SCALE, MAX_THREADS, type NormalizedTensor, readInt32Operand, readTensorOperand } from './validate';
import { testHooks } from './attention';
import { polled } from './spin';

/** An int32 argument: a host tensor, a plain Int32Array (1-D), or a DeviceTensor. */
export type Int32Input = HostTensor<'int32'> | Int32Array | DeviceTensor<'int32'>;

/** Options of flashAttentionWithKVCache(). causal and windowSize are aligned to the bottom-right
 * corner of each row's own [seqlenQ, cacheSeqlens[b] + seqlenNew] block; host tensors always run
 * on the CPU backend, DeviceTensors on the GPU (device: 'auto' or 'cuda'). */
export interface KVCacheOptions extends AttentionOptions {
  /** int32 [batch]: tokens already in each row's cache (required). Row b attends to its first
   * cacheSeqlens[b] + seqlenNew keys. */
  cacheSeqlens: Int32Input;
  /** [batch, seqlenNew, headsKV, headDim], q's dtype: written into the cache at positions
   * cacheSeqlens[b] … cacheSeqlens[b] + seqlenNew − 1 before attending (vNew likewise). */
  kNew?: AnyTensor;
  vNew?: AnyTensor;
  /** int32 [batch, maxBlocksPerSeq]: makes the caches paged, [numBlocks, pageSize, headsKV,
   * headDim] (pageSize a multiple of 16); page j of row b is block blockTable[b][j]. */
  blockTable?: Int32Input;
  /** int32 [batch]: the cache row of batch row b (contiguous caches; default row b). */
  cacheBatchIdx?: Int32Input;
  /** q's dtype, [rotarySeqlen ≥ cache capacity, rotaryDim / 2]: rotary embedding of q and kNew at
   * each token's position (rotaryDim a multiple of 16, at most headDim). */
  rotaryCos?: AnyTensor;
  rotarySin?: AnyTensor;
  /** Rotate pairs (0, 1), (2, 3), … (GPT-J) instead of the halves (i, i + rotaryDim/2) (GPT-NeoX). */
  rotaryInterleaved?: boolean;
  /** Calls on one Stream run in issue order. */
  stream?: Stream;
  /** Written in place: [batch, seqlenQ, headsQ, headDim], q's dtype and kind. */
  out?: AnyTensor;
  /** Written in place: float32 [batch, headsQ, seqlenQ]. */
  lse?: AnyTensor;
}

const FN = 'flashAttentionWithKVCache';
const TENSOR_KEYS = ['kNew', 'vNew', 'blockTable', 'cacheBatchIdx', 'rotaryCos', 'rotarySin', 'out', 'lse'] as const;
const INT32_KEYS = new Set(['cacheSeqlens', 'blockTable', 'cacheBatchIdx']);
const OPTION_KEYS = [
  'cacheSeqlens', ...TENSOR_KEYS, 'rotaryInterleaved', 'causal', 'windowSize', 'softmaxScale', 'device', 'deviceIndex',
  'threads', 'stream',
];

function err(code: FlashAttentionError['code'], message: string): FlashAttentionError {
  return new FlashAttentionError(code, `${FN}: ${message}`);
}

/** One tensor argument, read once; a plain Int32Array stands for a 1-D int32 tensor. */
function operand(field: string, value: unknown): NormalizedTensor {
  return INT32_KEYS.has(field) ? readInt32Operand(FN, field, value) : readTensorOperand(FN, field, value);
}

/** The user's options, own properties only, each read once. */
function readOptions(options: unknown): Record<string, unknown> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw err('E_ARG', `options must be an object with at least cacheSeqlens; got ${describeValue(options)}`);
  }
  const read: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const key of ownKeys(options, 'options')) {
    if (!OPTION_KEYS.includes(key)) throw err('E_ARG', `unknown option '${key}'; valid options: ${OPTION_KEYS.join(', ')}`);
  }
  for (const key of OPTION_KEYS) read[key] = ownField(options, key, `options.${key}`);
  return read;
}

interface Scalars {
  scale: number;
  windowLeft: number;
  windowRight: number;
  threads: number;
  rotaryInterleaved: boolean;
}

function readScalars(o: Record<string, unknown>, headDim: number): Scalars {
  const { causal, windowSize, softmaxScale, threads, rotaryInterleaved } = o;
  if (causal !== undefined && typeof causal !== 'boolean') throw err('E_ARG', `causal must be a boolean; got ${describeValue(causal)}`);
  if (rotaryInterleaved !== undefined && typeof rotaryInterleaved !== 'boolean') {
    throw err('E_ARG', `rotaryInterleaved must be a boolean; got ${describeValue(rotaryInterleaved)}`);
  }
  let [left, right] = [-1, -1];
  if (windowSize !== undefined) {
    const sides = Array.isArray(windowSize) ? ownArray(windowSize, 'windowSize') : undefined;
    if (sides === undefined || sides.length !== 2 || !sides.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= -1)) {
      throw err('E_ARG', `windowSize must be [left, right], integers >= -1 (-1 = unbounded); got ${describeValue(windowSize)}`);
    }
    [left, right] = sides as [number, number];
  }
  if (causal === true) {
    if (right > 0) throw err('E_ARG', `causal: true means windowSize[1] = 0; got windowSize ${describeValue(windowSize)}`);
    right = 0;
  }
  let scale = 1 / Math.sqrt(headDim);
  if (softmaxScale !== undefined) {
    if (typeof softmaxScale !== 'number' || !Number.isFinite(softmaxScale) || Math.abs(softmaxScale) > MAX_SOFTMAX_SCALE) {
      throw err('E_ARG', `softmaxScale must be a finite number of magnitude at most ${MAX_SOFTMAX_SCALE.toPrecision(4)}; got ${describeValue(softmaxScale)}`);
    }
    scale = softmaxScale;
  }
  if (threads !== undefined && (typeof threads !== 'number' || !Number.isSafeInteger(threads) || threads < 0 || threads > MAX_THREADS)) {
    throw err('E_ARG', `threads must be an integer from 0 to ${MAX_THREADS}; got ${describeValue(threads)}`);
  }
  return { scale, windowLeft: left, windowRight: right, threads: (threads as number | undefined) ?? 0, rotaryInterleaved: rotaryInterleaved === true };
}

/** 'cpu' for host tensors, 'cuda' for DeviceTensors (checked against options.device and the GPU). */
function pickBackend(o: Record<string, unknown>, kind: 'host' | 'device', tensorDevice: number): { backend: 'cpu' | 'cuda'; device: number } {
  const { device, deviceIndex } = o;
  if (device !== undefined && device !== 'auto' && device !== 'cpu' && device !== 'cuda') {
    throw err('E_ARG', `device must be 'auto', 'cpu' or 'cuda'; got ${describeValue(device)}`);
  }
  if (deviceIndex !== undefined && (typeof deviceIndex !== 'number' || !Number.isSafeInteger(deviceIndex) || deviceIndex < 0)) {
    throw err('E_ARG', `deviceIndex must be a non-negative integer; got ${describeValue(deviceIndex)}`);
  }
  if (kind === 'host') {
    if (device === 'cuda') {
      throw err('E_UNSUPPORTED', "device: 'cuda' needs the caches on the GPU (they are updated in place there): pass DeviceTensors " +
        '(DeviceTensor.from(t)) for q, the caches and every other tensor');
    }
    return { backend: 'cpu', device: 0 };
  }
  if (device === 'cpu') throw err('E_ARG', "device: 'cpu' cannot run on DeviceTensors; download them with await t.toHost()");
  if (deviceIndex !== undefined && deviceIndex !== tensorDevice) {
    throw err('E_ARG', `deviceIndex ${deviceIndex as number} does not match the DeviceTensors' device ${tensorDevice}`);
  }
  const why = noGpuReason(cachedProbe(), tensorDevice);
  if (why) throw err('E_NO_DEVICE', `DeviceTensors need a usable CUDA GPU, but ${why}`);
  return { backend: 'cuda', device: tensorDevice };
}

/** Host tensors or DeviceTensors on one device, never mixed. */
function commonKind(ops: NormalizedTensor[]): { kind: 'host' | 'device'; device: number } {
  const kind = ops[0].kind;
  const odd = ops.find((o) => o.kind !== kind);
  if (odd) {
    throw err('E_ARG', `tensors must be all host tensors or all DeviceTensors; q is ${kind === 'host' ? 'a host tensor' : 'a DeviceTensor'} ` +
      `but ${odd.field} is ${odd.kind === 'host' ? 'a host tensor' : 'a DeviceTensor'}`);
  }
  if (kind === 'host') return { kind, device: 0 };
  const devices = ops.map((x) => (x.value as DeviceTensor).device);
  const other = ops.find((_, i) => devices[i] !== devices[0]);
  if (other) throw err('E_ARG', `DeviceTensors must be on one device; q is on cuda:${devices[0]}, ${other.field} on cuda:${(other.value as DeviceTensor).device}`);
  return { kind, device: devices[0] };
}

/** One validated tensor as the addon takes it (a DeviceTensor is acquired: release it after). */
function nativeArg(o: NormalizedTensor): NativeTensorArg {
  if (o.value instanceof DeviceTensor) return o.value.nativeArg(FN);
  const a: NativeTensorArg = { data: nativeArray(o.data!), shape: [...o.shape], dtype: o.dtype as NativeDType };
  const strides = ownField(o.value as object, 'strides', `${o.field}.strides`);
  if (strides !== undefined) a.strides = strides as number[];
  return a;
}

/** Turns what the addon threw into a FlashAttentionError in this function's terms. */
function addonError(e: unknown): FlashAttentionError {
  if (e instanceof FlashAttentionError) return e;
  const raw = e as { message?: unknown } | null;
  if (raw && typeof raw.message === 'string') raw.message = raw.message.replace(/^kvcache: /, '');
  return rewrap(e, FN);
}

/**
 * Attention against a KV cache, with flash-attn's flash_attn_with_kvcache semantics: optional
 * kNew/vNew are appended to each row's cache at cacheSeqlens[b] (rotary applied to kNew when
 * rotaryCos/rotarySin are given), then q (rotated likewise) attends to the first
 * cacheSeqlens[b] + seqlenNew keys of its row, with causal/windowSize aligned to that length.
 *
 * q: [batch, seqlenQ, headsQ, headDim]; kCache, vCache: [batchCache, maxSeqlen, headsKV, headDim],
 * or paged [numBlocks, pageSize, headsKV, headDim] with blockTable. Returns out (like q) and lse
 * (float32 [batch, headsQ, seqlenQ]); a row that sees no key gives zeros and lse −Infinity.
 *
 * The cache is updated in place. Host tensors run on the CPU backend: q, the new keys and both
 * caches are read when the call starts, and when the promise resolves the appended positions (and
 * nothing else) have been written into kCache.data and vCache.data; if it rejects, the caches are
 * unchanged. So await a call before issuing the next that reads the same cache. DeviceTensors run
 * on the GPU and update the caches in stream order (a later call on the same Stream sees them).
 * cacheSeqlens does not advance: add seqlenNew to it yourself.
 */
export async function flashAttentionWithKVCache<D extends DType>(
  q: DeviceTensor<D>,
  kCache: DeviceTensor<D>,
  vCache: DeviceTensor<D>,
  options: KVCacheOptions,
): Promise<AttentionResult<DeviceTensor<D>, DeviceTensor<'float32'>>>;
export async function flashAttentionWithKVCache<D extends DType>(
  q: HostTensor<D>,
  kCache: HostTensor<D>,
  vCache: HostTensor<D>,
  options: KVCacheOptions,
): Promise<AttentionResult<HostTensor<D>, HostTensor<'float32'>>>;
export async function flashAttentionWithKVCache(
  q: AnyTensor,
  kCache: AnyTensor,
  vCache: AnyTensor,
  options: KVCacheOptions,
): Promise<AttentionResult>;
export async function flashAttentionWithKVCache(
  q: AnyTensor,
  kCache: AnyTensor,
  vCache: AnyTensor,
  options: KVCacheOptions,
): Promise<AttentionResult> {
  const o = readOptions(options);
  const ops: NormalizedTensor[] = [operand('q', q), operand('kCache', kCache), operand('vCache', vCache)];
  if (o.cacheSeqlens === undefined) throw err('E_ARG', 'options.cacheSeqlens is required: int32 [batch], the tokens already in each row\'s cache');
  ops.push(operand('cacheSeqlens', o.cacheSeqlens));
  for (const key of TENSOR_KEYS) if (o[key] !== undefined) ops.push(operand(key, o[key]));
  const qo = ops[0];
  if (qo.shape.length !== 4) {
    throw err('E_SHAPE', `q must have 4 dims [batch, seqlenQ, headsQ, headDim]; got shape ${describeValue(qo.shape)}`);
  }
  const [batch, seqlenQ, headsQ, headDim] = qo.shape;
  const scalars = readScalars(o, headDim);
  const { kind, device: tensorDevice } = commonKind(ops);
  const where = pickBackend(o, kind, tensorDevice);
  let stream: NativeStream | undefined;
  if (o.stream !== undefined) {
    if (!(o.stream instanceof Stream)) throw err('E_ARG', `stream must be a Stream (new Stream(deviceIndex)); got ${describeValue(o.stream)}`);
    if (where.backend === 'cuda' && o.stream.device !== where.device) {
      throw err('E_ARG', `the stream is on device ${o.stream.device}, but the call runs on device ${where.device}`);
    }
    stream = o.stream.handle(FN);
  }

  // Host outputs the caller gave none for are allocated here; device ones by the addon.
  const outShape = [batch, seqlenQ, headsQ, headDim];
  const lseShape = [batch, headsQ, seqlenQ];
  const given = (name: 'out' | 'lse', shape: number[], dtype: DType): NormalizedTensor | undefined => {
    const have = ops.find((x) => x.field === name);
    if (have || kind === 'device') return have;
    const t = tensor(allocHost(dtype, shape.reduce((a, b) => a * b, 1)), shape, dtype);
    const made = operand(name, t);
    ops.push(made);
    return made;
  };
  const outArg = given('out', outShape, qo.dtype);
  const lseArg = given('lse', lseShape, 'float32');

  const acquired: DeviceTensor[] = [];
  let res;
  try {
    const request: Partial<NativeKvCacheRequest> & Record<string, unknown> = {
      backend: where.backend,
      device: where.device,
      scale: scalars.scale,
      windowLeft: scalars.windowLeft,
      windowRight: scalars.windowRight,
      threads: scalars.threads,
      poison: testHooks.poisonOutputs,
      rotaryInterleaved: scalars.rotaryInterleaved,
    };
    if (stream) request.stream = stream;
    // Acquire before the first await: the caller may dispose() a DeviceTensor right after the call.
    for (const x of ops) {
      request[x.field] = nativeArg(x);
      if (x.value instanceof DeviceTensor) acquired.push(x.value);
    }
    res = await polled(native().kvcache(request as NativeKvCacheRequest));
  } catch (e) {
    throw addonError(e);
  } finally {
    for (const t of acquired) t.release();
  }
  const wrap = (arg: NormalizedTensor | undefined, got: unknown, shape: number[], dtype: DType): AnyTensor => {
    if (arg) return arg.value as AnyTensor;
    if (got === undefined || ArrayBuffer.isView(got)) throw err('E_INTERNAL', 'the addon returned no device output (a bug in flashattn)');
    return DeviceTensor.fromBuffer(got as never, shape, dtype);
  };
  const out = wrap(outArg, res.out, outShape, qo.dtype);
  let lse: AnyTensor;
  try {
    lse = wrap(lseArg, res.lse, lseShape, 'float32');
  } catch (e) {
    if (!outArg && out instanceof DeviceTensor) out.dispose();
    throw e;
  }
  return { out, lse };
}
