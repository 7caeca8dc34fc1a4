// validate.ts — turns what the user passed into one normalized request, or throws a
// FlashAttentionError that names the field and says what was expected and what was given.
// Backend choice (cpu / cuda) happens in attention.ts, on the normalized request.
import { DeviceTensor } from './device-tensor';
import { type DType, type HostArray, arrayMatches, arrayNameFor, isDType } from './dtype';
import { type ErrorCode, FlashAttentionError, describeValue } from './errors';
import { ownArray, ownField, ownKeys, typedArrayLength, typedArrayName } from './own';
import { type HostTensor, detachedMessage, numel, readShape } from './tensor';

/** Options of flashAttention(). */
export interface AttentionOptions {
  /** Causal mask aligned to the bottom-right corner (query i sees keys j <= i + seqlenK - seqlenQ). */
  causal?: boolean;
  /** Sliding window [left, right]; -1 means unbounded on that side. Default [-1, -1]. */
  windowSize?: readonly [number, number];
  /** Multiplies q·k before the softmax. Default 1/sqrt(headDim). */
  softmaxScale?: number;
  /** 'auto' (default): CUDA when it can run the request, else the CPU backend. */
  device?: 'auto' | 'cpu' | 'cuda';
  /** CUDA device index (default 0, or the DeviceTensors' device). */
  deviceIndex?: number;
  /** CPU backend threads, 0 to 1024 (MAX_THREADS); 0 or unset: one per hardware thread. */
  threads?: number;
}

/** A descale factor array of fp8 attention: float32 [batch, heads] as a host tensor, a plain
 * Float32Array of batch·heads values, or a DeviceTensor. */
export type DescaleInput = HostTensor<'float32'> | Float32Array | DeviceTensor<'float32'>;

/** Options of flashAttention() that only float8_e4m3 inputs take. */
export interface Fp8Options {
  /** What q, k, v were divided by when quantized (quantizeFp8's descale): q [batch, headsQ], k and v
   * [batch, headsKV]; an omitted one means 1. Scores are descale.q·descale.k·(q·k) and the output
   * descale.v·(P·v). */
  descale?: { q?: DescaleInput; k?: DescaleInput; v?: DescaleInput };
  /** dtype of `out` for float8_e4m3 inputs: 'bfloat16' (default) or 'float16'. Other inputs take
   * only their own dtype here. */
  outDtype?: DType;
}

/** Options of flashAttentionBackward(). */
export interface BackwardOptions extends AttentionOptions {
  /** Bit-identical dq/dk/dv from run to run (may be slower on CUDA). The CPU backend always is. */
  deterministic?: boolean;
}

/** Either kind of tensor the attention functions accept. */
export type AnyTensor = HostTensor | DeviceTensor;

/** Sizes of one attention problem. */
export interface AttentionDims {
  batch: number;
  seqlenQ: number;
  seqlenK: number;
  headsQ: number;
  headsKV: number;
  headDim: number;
}

/** A checked, normalized attention request. @internal */
export interface NormalizedRequest {
  op: 'forward' | 'backward';
  /** Host tensors or DeviceTensors (never mixed). */
  kind: 'host' | 'device';
  dtype: DType;
  dims: AttentionDims;
  scale: number;
  /** -1 = unbounded. Windows that cover every key are normalized to -1. */
  windowLeft: number;
  windowRight: number;
  device: 'auto' | 'cpu' | 'cuda';
  /** CUDA device index: the option, else the DeviceTensors' device, else 0. */
  deviceIndex: number;
  threads: number;
  deterministic: boolean;
  /** dtype of the forward's `out`: q's, or bf16/fp16 for float8_e4m3. */
  outDtype: DType;
  /** fp8 descale factors as validated (forward only; absent ones mean 1). */
  descale: { q?: NormalizedTensor; k?: NormalizedTensor; v?: NormalizedTensor };
  /**
   * The tensors as validated, in argument order (forward: q, k, v; backward: dout, q, k, v, out,
   * lse): each user property read once, so pass these on rather than reading the user's objects again.
   */
  tensors: readonly NormalizedTensor[];
}

/** One tensor argument as read by validation. @internal */
export interface NormalizedTensor {
  field: string;
  kind: 'host' | 'device';
  shape: readonly number[];
  dtype: DType;
  /** Host tensors: the typed array (its type checked by internal slot). */
  data?: HostArray;
  /** The object the user passed (a DeviceTensor for kind 'device'). */
  value: unknown;
}

export const MAX_HEAD_DIM = 256;

/** Most CPU threads one call may ask for (the addon's cap). */
export const MAX_THREADS = 1024;

/**
 * Largest |softmaxScale|: the CUDA kernels fold log2(e) into the scale in float32, so a larger one
 * overflows there; both backends refuse it alike.
 */
export const MAX_SOFTMAX_SCALE = 3.4028234663852886e38 / Math.LOG2E;

const COMMON_KEYS = ['causal', 'windowSize', 'softmaxScale', 'device', 'deviceIndex', 'threads'];
const FORWARD_KEYS = [...COMMON_KEYS, 'descale', 'outDtype'];
const BACKWARD_KEYS = [...COMMON_KEYS, 'deterministic'];

function err(code: ErrorCode, fn: string, message: string): FlashAttentionError {
  return new FlashAttentionError(code, `${fn}: ${message}`);
}

type Operand = NormalizedTensor;

function isDeviceTensor(value: unknown): value is DeviceTensor {
  try {
    return value instanceof DeviceTensor;
  } catch {
    return false; // a Proxy whose getPrototypeOf trap throws
  }
}

/** Checks one tensor argument: its kind, dtype, data array and shape (not its rank). @internal */
export function readTensorOperand(fn: string, field: string, value: unknown): Operand {
  return operand(fn, field, value);
}

/** An int32 argument (lengths, offsets, block tables): an int32 tensor or DeviceTensor, or a plain
 * Int32Array standing for a 1-D one; any other dtype is E_DTYPE. @internal */
export function readInt32Operand(fn: string, field: string, value: unknown): Operand {
  if (typedArrayName(value) === 'Int32Array') {
    const a = value as Int32Array;
    value = { data: a, shape: [typedArrayLength(a)], dtype: 'int32' };
  }
  const o = operand(fn, field, value);
  if (o.dtype !== 'int32') {
    throw err('E_DTYPE', fn, `${field} must be int32 (an Int32Array, tensor or DeviceTensor); got dtype '${o.dtype}'`);
  }
  return o;
}

function operand(fn: string, field: string, value: unknown): Operand {
  try {
    return readOperand(fn, field, value);
  } catch (e) {
    throw prefixed(fn, e);
  }
}

function readOperand(fn: string, field: string, value: unknown): Operand {
  if (isDeviceTensor(value)) {
    try {
      value.assertLive(`${fn}: ${field}`);
    } catch (e) {
      if (e instanceof FlashAttentionError) throw e;
      // Inherits from DeviceTensor.prototype without being one (Object.create, a Proxy...).
      throw err(
        'E_ARG',
        fn,
        `${field} is not a DeviceTensor made by DeviceTensor.empty() or DeviceTensor.from() (it only inherits from ` +
          'DeviceTensor.prototype)',
      );
    }
    return { field, kind: 'device', shape: value.shape, dtype: value.dtype, value };
  }
  const notTensor = () =>
    err(
      'E_ARG',
      fn,
      `${field} must be a tensor (tensor(data, shape, dtype)) or a DeviceTensor; got ${describeValue(value)}` +
        (typeof value === 'object' && value !== null ? ' without own data and shape properties (inherited ones are not read)' : ''),
    );
  if (typeof value !== 'object' || value === null) throw notTensor();
  const data = ownField(value, 'data', `${field}.data`);
  const shape = ownField(value, 'shape', `${field}.shape`);
  const dtype = ownField(value, 'dtype', `${field}.dtype`);
  if (data === undefined || shape === undefined) throw notTensor();
  if (dtype === undefined) {
    throw err(
      'E_DTYPE',
      fn,
      `${field}.dtype is missing; make tensors with tensor(data, shape, dtype) (a Uint16Array needs 'float16' or 'bfloat16')`,
    );
  }
  if (!isDType(dtype)) {
    throw err(
      'E_DTYPE',
      fn,
      `${field}.dtype must be one of 'float32', 'float16', 'bfloat16', 'float8_e4m3'; got ${describeValue(dtype)}`,
    );
  }
  if (!arrayMatches(data, dtype)) {
    const hint = typedArrayName(data) === undefined && typeof data === 'object' && data !== null
      ? ' (pass the typed array itself: a Proxy or look-alike of one is not accepted)'
      : '';
    throw err(
      'E_DTYPE',
      fn,
      `${field}.data must be a ${arrayNameFor(dtype)} for ${dtype} tensors; got ${describeValue(data)}${hint}`,
    );
  }
  const dims = readShape(shape, `${field}.shape`);
  const array = data as HostArray;
  const length = typedArrayLength(array);
  if (length !== numel(dims)) {
    const detached = detachedMessage(array, `${field}.data`);
    if (detached !== undefined) throw err('E_ARG', fn, detached);
    throw err(
      'E_SHAPE',
      fn,
      `${field}.data has ${length} elements but ${field}.shape ${describeValue(dims)} needs ${numel(dims)}`,
    );
  }
  return { field, kind: 'host', shape: dims, dtype, data: array, value };
}

const AXES = ['batch', 'seqlen', 'heads', 'headDim'];

function rank4(fn: string, o: Operand): void {
  if (o.shape.length !== 4) {
    throw err(
      'E_SHAPE',
      fn,
      `${o.field} must have 4 dims [batch, seqlen, heads, headDim]; got shape ${describeValue(o.shape)} (${o.shape.length} dims)`,
    );
  }
}

function sameAxis(fn: string, a: Operand, b: Operand, axis: number): void {
  if (a.shape[axis] !== b.shape[axis]) {
    throw err(
      'E_SHAPE',
      fn,
      `${b.field}.shape[${axis}] (${AXES[axis]}) must equal ${a.field}.shape[${axis}] = ${a.shape[axis]}; ` +
        `got ${b.shape[axis]} (${a.field} ${describeValue(a.shape)}, ${b.field} ${describeValue(b.shape)})`,
    );
  }
}

function sameShape(fn: string, a: Operand, b: Operand): void {
  for (let i = 0; i < 4; i++) sameAxis(fn, a, b, i);
}

/** The options, own properties only, each read once (an inherited `causal: true` is not an option). */
function checkOptions(fn: string, options: unknown, allowed: string[]): Record<string, unknown> {
  // No prototype: destructuring it later must not find a polluted Object.prototype.causal.
  const read: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (options === undefined) return read;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw err('E_ARG', fn, `options must be an object; got ${describeValue(options)}`);
  }
  try {
    for (const key of ownKeys(options, 'options')) {
      if (!allowed.includes(key)) {
        throw err('E_ARG', fn, `unknown option '${key}'; valid options: ${allowed.join(', ')}`);
      }
    }
    for (const key of allowed) read[key] = ownField(options, key, `options.${key}`);
  } catch (e) {
    throw prefixed(fn, e);
  }
  return read;
}

/** An error from own.ts (no function name yet) with `fn: ` in front. */
function prefixed(fn: string, e: unknown): unknown {
  if (e instanceof FlashAttentionError && !e.message.startsWith(`${fn}:`)) {
    return new FlashAttentionError(e.code, `${fn}: ${e.message}`, { cause: e.cause });
  }
  return e;
}

function windowSide(fn: string, value: unknown, index: number, window: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < -1) {
    throw err(
      'E_ARG',
      fn,
      `windowSize[${index}] must be an integer >= 0, or -1 for unbounded; got ${describeValue(value)} ` +
        `(windowSize ${describeValue(window)})`,
    );
  }
  return value;
}

/** Checks and normalizes the options shared by forward and backward. Windows are normalized
 * against dims.seqlenQ/seqlenK when those are given (varlen requests have one per sequence). */
function normalizeOptions(
  fn: string,
  options: Record<string, unknown>,
  dims: Pick<AttentionDims, 'headDim'> & Partial<AttentionDims>,
): Pick<NormalizedRequest, 'scale' | 'windowLeft' | 'windowRight' | 'device' | 'threads' | 'deterministic'> & {
  deviceIndex: number | undefined;
} {
  const { causal, windowSize, softmaxScale, device, deviceIndex, threads, deterministic } = options;
  if (causal !== undefined && typeof causal !== 'boolean') {
    throw err('E_ARG', fn, `causal must be a boolean; got ${describeValue(causal)}`);
  }
  let left = -1;
  let right = -1;
  if (windowSize !== undefined) {
    const sides = Array.isArray(windowSize) ? ownArray(windowSize, 'windowSize') : undefined;
    if (sides === undefined || sides.length !== 2) {
      throw err('E_ARG', fn, `windowSize must be [left, right] (integers, -1 = unbounded); got ${describeValue(windowSize)}`);
    }
    left = windowSide(fn, sides[0], 0, windowSize);
    right = windowSide(fn, sides[1], 1, windowSize);
  }
  if (causal === true) {
    if (right !== -1 && right !== 0) {
      throw err(
        'E_ARG',
        fn,
        `causal: true means windowSize[1] = 0 (no keys to the right of the diagonal); got windowSize ${describeValue(windowSize)}. ` +
          'Drop causal and pass windowSize, or use windowSize [left, 0] / [left, -1] with causal',
      );
    }
    right = 0;
  }
  // A side that already covers every key of every row is the same as unbounded:
  // row i's window is [i + sk - sq - left, i + sk - sq + right] and rows run over 0..sq-1.
  if (dims.seqlenK !== undefined && left >= dims.seqlenK - 1) left = -1;
  if (dims.seqlenQ !== undefined && right >= dims.seqlenQ - 1) right = -1;

  let scale = 1 / Math.sqrt(dims.headDim);
  if (softmaxScale !== undefined) {
    if (typeof softmaxScale !== 'number' || !Number.isFinite(softmaxScale)) {
      throw err('E_ARG', fn, `softmaxScale must be a finite number; got ${describeValue(softmaxScale)}`);
    }
    if (Math.abs(softmaxScale) > MAX_SOFTMAX_SCALE) {
      throw err(
        'E_ARG',
        fn,
        `softmaxScale must be at most ${MAX_SOFTMAX_SCALE.toPrecision(4)} in magnitude (float32's largest value over ` +
          `log2(e): the kernels fold log2(e) into the scale in float32); got ${softmaxScale}. Scale q or k instead`,
      );
    }
    scale = softmaxScale;
  }
  if (device !== undefined && device !== 'auto' && device !== 'cpu' && device !== 'cuda') {
    throw err('E_ARG', fn, `device must be 'auto', 'cpu' or 'cuda'; got ${describeValue(device)}`);
  }
  if (deviceIndex !== undefined && (typeof deviceIndex !== 'number' || !Number.isSafeInteger(deviceIndex) || deviceIndex < 0)) {
    throw err('E_ARG', fn, `deviceIndex must be a non-negative integer; got ${describeValue(deviceIndex)}`);
  }
  if (
    threads !== undefined &&
    (typeof threads !== 'number' || !Number.isSafeInteger(threads) || threads < 0 || threads > MAX_THREADS)
  ) {
    throw err(
      'E_ARG',
      fn,
      `threads must be an integer from 0 to ${MAX_THREADS} (0 = one per hardware thread); got ${describeValue(threads)}`,
    );
  }
  if (deterministic !== undefined && typeof deterministic !== 'boolean') {
    throw err('E_ARG', fn, `deterministic must be a boolean; got ${describeValue(deterministic)}`);
  }
  return {
    scale,
    windowLeft: left,
    windowRight: right,
    device: (device as NormalizedRequest['device'] | undefined) ?? 'auto',
    deviceIndex: deviceIndex as number | undefined,
    threads: (threads as number | undefined) ?? 0,
    deterministic: deterministic === true,
  };
}

/** Kind (host/device) and device index shared by all tensors, or E_ARG. */
function commonKind(fn: string, operands: Operand[]): { kind: 'host' | 'device'; device?: number } {
  const kind = operands[0].kind;
  for (const o of operands) {
    if (o.kind !== kind) {
      const hosts = operands.filter((x) => x.kind === 'host').map((x) => x.field);
      const devs = operands.filter((x) => x.kind === 'device').map((x) => x.field);
      throw err(
        'E_ARG',
        fn,
        `tensors must be all host tensors or all DeviceTensors; got host ${hosts.join(', ')} and device ${devs.join(', ')}. ` +
          'Use DeviceTensor.from(t) to upload, or await t.toHost() to download',
      );
    }
  }
  if (kind === 'host') return { kind };
  const devices = operands.map((o) => (o.value as DeviceTensor).device);
  if (devices.some((d) => d !== devices[0])) {
    throw err(
      'E_ARG',
      fn,
      `DeviceTensors must be on one device; got ${operands.map((o, i) => `${o.field} on cuda:${devices[i]}`).join(', ')}`,
    );
  }
  return { kind, device: devices[0] };
}

function finish(
  fn: string,
  op: 'forward' | 'backward',
  dtype: DType,
  dims: AttentionDims,
  opts: ReturnType<typeof normalizeOptions>,
  common: { kind: 'host' | 'device'; device?: number },
  tensors: readonly Operand[],
): NormalizedRequest {
  let deviceIndex = opts.deviceIndex ?? common.device ?? 0;
  if (common.kind === 'device') {
    if (opts.device === 'cpu') {
      throw err(
        'E_ARG',
        fn,
        "device: 'cpu' cannot run on DeviceTensors; download them with await t.toHost(), or use device 'cuda'/'auto'",
      );
    }
    if (opts.deviceIndex !== undefined && opts.deviceIndex !== common.device) {
      throw err('E_ARG', fn, `deviceIndex ${opts.deviceIndex} does not match the DeviceTensors' device ${common.device}`);
    }
    deviceIndex = common.device ?? 0;
  }
  return {
    op,
    kind: common.kind,
    dtype,
    dims,
    scale: opts.scale,
    windowLeft: opts.windowLeft,
    windowRight: opts.windowRight,
    device: opts.device,
    deviceIndex,
    threads: opts.threads,
    deterministic: opts.deterministic,
    outDtype: dtype,
    descale: {},
    tensors,
  };
}

/** Checks q/k/v and options of a forward call. @internal */
export function normalizeForward(q: unknown, k: unknown, v: unknown, options?: unknown): NormalizedRequest {
  const fn = 'flashAttention';
  const opts = checkOptions(fn, options, FORWARD_KEYS);
  const ops = [operand(fn, 'q', q), operand(fn, 'k', k), operand(fn, 'v', v)];
  const common = commonKind(fn, ops);
  const { dtype, dims } = checkQKV(fn, ops[0], ops[1], ops[2]);
  const req = finish(fn, 'forward', dtype, dims, normalizeOptions(fn, opts, dims), common, ops);
  req.outDtype = checkOutDtype(fn, dtype, opts.outDtype);
  req.descale = checkDescale(fn, dtype, dims, common.kind, opts.descale);
  return req;
}

/** The forward's out dtype: bf16 (default) or fp16 for float8_e4m3, else q's own. */
function checkOutDtype(fn: string, dtype: DType, outDtype: unknown): DType {
  if (dtype === 'float8_e4m3') {
    if (outDtype === undefined) return 'bfloat16';
    if (outDtype !== 'bfloat16' && outDtype !== 'float16') {
      throw err('E_DTYPE', fn, `outDtype must be 'bfloat16' or 'float16' for float8_e4m3 inputs; got ${describeValue(outDtype)}`);
    }
    return outDtype;
  }
  if (outDtype !== undefined && outDtype !== dtype) {
    throw err(
      'E_DTYPE',
      fn,
      `outDtype must be q's dtype '${dtype}' (only float8_e4m3 inputs choose their output dtype); got ${describeValue(outDtype)}`,
    );
  }
  return dtype;
}

/** Checks options.descale: float32 [batch, headsQ] for q, [batch, headsKV] for k and v, of the
 * call's kind (host arrays for host tensors, DeviceTensors on the same device for DeviceTensors). */
function checkDescale(
  fn: string,
  dtype: DType,
  dims: AttentionDims,
  kind: 'host' | 'device',
  descale: unknown,
): NormalizedRequest['descale'] {
  const out: NormalizedRequest['descale'] = {};
  if (descale === undefined) return out;
  if (dtype !== 'float8_e4m3') {
    throw err('E_ARG', fn, `descale applies to float8_e4m3 inputs only; q.dtype is '${dtype}'`);
  }
  if (typeof descale !== 'object' || descale === null || Array.isArray(descale)) {
    throw err('E_ARG', fn, `descale must be an object { q?, k?, v? } of float32 arrays; got ${describeValue(descale)}`);
  }
  try {
    for (const key of ownKeys(descale, 'descale')) {
      if (key !== 'q' && key !== 'k' && key !== 'v') {
        throw err('E_ARG', fn, `unknown descale key '${key}'; descale takes q, k and v`);
      }
    }
  } catch (e) {
    throw prefixed(fn, e);
  }
  for (const role of ['q', 'k', 'v'] as const) {
    const field = `descale.${role}`;
    let value = ownField(descale, role, field);
    if (value === undefined) continue;
    const heads = role === 'q' ? dims.headsQ : dims.headsKV;
    const shape = [dims.batch, heads];
    const legend = role === 'q' ? '[batch, headsQ]' : '[batch, headsKV]';
    if (typedArrayName(value) !== undefined) {
      if (typedArrayName(value) !== 'Float32Array') {
        throw err('E_DTYPE', fn, `${field} must be float32 (a Float32Array, tensor or DeviceTensor); got ${describeValue(value)}`);
      }
      const n = typedArrayLength(value as Float32Array);
      if (n !== dims.batch * heads) {
        throw err('E_SHAPE', fn, `${field} must hold ${legend} = ${describeValue(shape)} values (${dims.batch * heads}); got ${n}`);
      }
      value = { data: value, shape, dtype: 'float32' };
    }
    const o = operand(fn, field, value);
    if (o.dtype !== 'float32') throw err('E_DTYPE', fn, `${field}.dtype must be 'float32'; got '${o.dtype}'`);
    if (o.shape.length !== 2 || o.shape[0] !== shape[0] || o.shape[1] !== shape[1]) {
      throw err('E_SHAPE', fn, `${field}.shape must be ${legend} = ${describeValue(shape)}; got ${describeValue(o.shape)}`);
    }
    if (o.kind !== kind) {
      throw err(
        'E_ARG',
        fn,
        kind === 'device'
          ? `${field} must be a DeviceTensor when q, k, v are (upload it with DeviceTensor.from())`
          : `${field} must be a host array when q, k, v are host tensors (download it with await t.toHost())`,
      );
    }
    out[role] = { ...o, field };
  }
  return out;
}

/** Checks the tensors and options of a backward call. @internal */
export function normalizeBackward(
  dout: unknown,
  q: unknown,
  k: unknown,
  v: unknown,
  out: unknown,
  lse: unknown,
  options?: unknown,
): NormalizedRequest {
  const fn = 'flashAttentionBackward';
  const opts = checkOptions(fn, options, BACKWARD_KEYS);
  const ops = [
    operand(fn, 'dout', dout),
    operand(fn, 'q', q),
    operand(fn, 'k', k),
    operand(fn, 'v', v),
    operand(fn, 'out', out),
    operand(fn, 'lse', lse),
  ];
  const common = commonKind(fn, ops);
  const [oDout, oQ, oK, oV, oOut, oLse] = ops;
  const { dtype, dims } = checkQKV(fn, oQ, oK, oV);
  if (dtype === 'float8_e4m3') {
    throw err('E_UNSUPPORTED', fn, 'float8_e4m3 has no backward pass; train in float16 or bfloat16');
  }
  for (const o of [oDout, oOut]) {
    rank4(fn, o);
    sameShape(fn, oQ, o);
    if (o.dtype !== dtype) {
      throw err('E_DTYPE', fn, `${o.field}.dtype must be q's dtype '${dtype}'; got '${o.dtype}'`);
    }
  }
  const lseShape = [dims.batch, dims.headsQ, dims.seqlenQ];
  if (oLse.shape.length !== 3 || oLse.shape.some((s, i) => s !== lseShape[i])) {
    throw err(
      'E_SHAPE',
      fn,
      `lse.shape must be [batch, headsQ, seqlenQ] = ${describeValue(lseShape)} (as flashAttention returned it); got ${describeValue(oLse.shape)}`,
    );
  }
  if (oLse.dtype !== 'float32') {
    throw err('E_DTYPE', fn, `lse.dtype must be 'float32' (as flashAttention returned it); got '${oLse.dtype}'`);
  }
  return finish(fn, 'backward', dtype, dims, normalizeOptions(fn, opts, dims), common, ops);
}

/** The sizes that must be at least 1: name, tensor, axis. */
const SIZES = [
  ['batch', 'q', 0],
  ['seqlenQ', 'q', 1],
  ['headsQ', 'q', 2],
  ['seqlenK', 'k', 1],
  ['headsKV', 'k', 2],
  ['headDim', 'q', 3],
] as const;

function checkQKV(fn: string, q: Operand, k: Operand, v: Operand): { dtype: DType; dims: AttentionDims } {
  for (const o of [q, k, v]) rank4(fn, o);
  if (k.dtype !== q.dtype || v.dtype !== q.dtype) {
    throw err('E_DTYPE', fn, `q, k and v must have one dtype; got q '${q.dtype}', k '${k.dtype}', v '${v.dtype}'`);
  }
  sameAxis(fn, q, k, 0);
  sameAxis(fn, q, v, 0);
  sameShape(fn, k, v);
  sameAxis(fn, q, k, 3);
  const [batch, seqlenQ, headsQ, headDim] = q.shape;
  const [, seqlenK, headsKV] = k.shape;
  for (const [name, role, axis] of SIZES) {
    const value = (role === 'q' ? q : k).shape[axis];
    if (value < 1) throw err('E_SHAPE', fn, `${name} (${role}.shape[${axis}]) must be at least 1; got ${value}`);
  }
  // E_UNSUPPORTED, like the addon: a valid shape that no backend here implements.
  if (headDim % 8 !== 0 || headDim > MAX_HEAD_DIM) {
    throw err(
      'E_UNSUPPORTED',
      fn,
      `headDim (q.shape[3]) must be a multiple of 8 and at most ${MAX_HEAD_DIM}; got ${headDim}. ` +
        'Pad q, k and v with zeros up to the next multiple of 8 (pass softmaxScale for the original headDim)',
    );
  }
  if (headsQ % headsKV !== 0) {
    throw err(
      'E_SHAPE',
      fn,
      `headsQ (q.shape[2] = ${headsQ}) must be a multiple of headsKV (k.shape[2] = ${headsKV}) for grouped-query attention`,
    );
  }
  return { dtype: q.dtype, dims: { batch, seqlenQ, seqlenK, headsQ, headsKV, headDim } };
}

/** The offsets of a varlen request as validated, and its optional max lengths. @internal */
export interface NormalizedOffsets {
  cuSeqlensQ: NormalizedTensor;
  cuSeqlensK: NormalizedTensor;
  maxSeqlenQ?: number;
  maxSeqlenK?: number;
}

const VARLEN_KEYS = ['cuSeqlensQ', 'cuSeqlensK', 'maxSeqlenQ', 'maxSeqlenK'];

/**
 * Checks what a varlen call needs before the addon checks the rest (shapes against each other,
 * dtypes, the offsets' values): the options, every tensor argument (`tensors` in argument order,
 * by name), host tensors only, q [totalQ, headsQ, headDim] and k [totalK, headsKV, headDim].
 * dims.batch is the number of sequences, dims.seqlenQ / seqlenK the packed totals. @internal
 */
export function normalizeVarlen(
  fn: string,
  op: 'forward' | 'backward',
  tensors: Record<string, unknown>,
  options: unknown,
): { req: NormalizedRequest; offsets: NormalizedOffsets } {
  const opts = checkOptions(fn, options, [...(op === 'forward' ? COMMON_KEYS : BACKWARD_KEYS), ...VARLEN_KEYS]);
  const ops = Object.keys(tensors).map((field) => operand(fn, field, tensors[field]));
  for (const key of ['cuSeqlensQ', 'cuSeqlensK']) {
    if (opts[key] === undefined) {
      throw err('E_ARG', fn, `options.${key} is required: int32 [batch + 1], the offsets of the sequences in the packed rows`);
    }
  }
  const cuSeqlensQ = readInt32Operand(fn, 'cuSeqlensQ', opts.cuSeqlensQ);
  const cuSeqlensK = readInt32Operand(fn, 'cuSeqlensK', opts.cuSeqlensK);
  for (const o of [cuSeqlensQ, cuSeqlensK]) {
    if (o.kind === 'device') {
      throw err('E_UNSUPPORTED', fn, `${o.field} is a DeviceTensor: the offsets must be a host int32 tensor or an Int32Array ` +
        '(they plan the launches on the host); download it with await t.toHost()');
    }
  }
  const common = commonKind(fn, ops);
  const [q, k] = [ops.find((o) => o.field === 'q'), ops.find((o) => o.field === 'k')] as [Operand, Operand];
  for (const [o, legend] of [[q, '[totalQ, headsQ, headDim]'], [k, '[totalK, headsKV, headDim]']] as const) {
    if (o.shape.length !== 3) {
      throw err('E_SHAPE', fn, `${o.field} must have 3 dims ${legend} (sequences packed along dim 0); got shape ${describeValue(o.shape)}`);
    }
  }
  const [totalQ, headsQ, headDim] = q.shape;
  const [totalK, headsKV] = k.shape;
  const o = normalizeOptions(fn, opts, { headDim }); // no window normalization: each sequence has its own lengths
  const offsets: NormalizedOffsets = { cuSeqlensQ, cuSeqlensK };
  for (const key of ['maxSeqlenQ', 'maxSeqlenK'] as const) {
    const m = opts[key];
    if (m === undefined) continue;
    if (typeof m !== 'number' || !Number.isSafeInteger(m) || m < 0) {
      throw err('E_ARG', fn, `${key} must be a non-negative integer (at least the longest sequence); got ${describeValue(m)}`);
    }
    offsets[key] = m;
  }
  const req = finish(fn, op, q.dtype, { batch: cuSeqlensQ.shape[0] - 1, seqlenQ: totalQ, seqlenK: totalK, headsQ, headsKV, headDim }, o, common, ops);
  return { req, offsets };
}
