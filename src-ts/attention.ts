// attention.ts — flashAttention() and flashAttentionBackward(): validate, pick the backend,
// allocate the outputs, and hand one request to the addon, which fills them in.
import type { AttentionGradients, AttentionResult, OutDType } from './api-types';
import type {
  NativeBackwardRequest,
  NativeCommon,
  NativeDType,
  NativeDeviceBuffer,
  NativeForwardRequest,
  NativeOutput,
  NativeSelection,
  NativeStream,
  NativeTensorArg,
} from './binding';
import { DeviceTensor } from './device-tensor';
import { type DType, allocHost, nativeArray } from './dtype';
import { FlashAttentionError, describeValue, rewrap } from './errors';
import { forwardFlat } from './flat';
import { cachedProbe, native, noGpuReason } from './probe';
import { polled } from './spin';
import { Stream } from './stream';
import { type HostTensor, tensor } from './tensor';
import {
  type AnyTensor,
  type AttentionOptions,
  type BackwardOptions,
  type Fp8Options,
  type NormalizedRequest,
  normalizeBackward,
  normalizeForward,
} from './validate';

/** The order of a 4-D attention tensor's dims: 'bshd' [batch, seqlen, heads, headDim] (flash-attn's,
 * the default) or 'bhsd' [batch, heads, seqlen, headDim] (PyTorch SDPA's). */
export type Layout = 'bshd' | 'bhsd';

/** Options of flashAttention() that the execution core reads (with AttentionOptions). */
export interface ExecutionOptions {
  /** Calls on one Stream run in issue order; calls on different Streams may overlap. */
  stream?: Stream;
  /**
   * Dim order of q, k, v, out (and dout, dq, dk, dv). 'bhsd' is read through strides, with no
   * copy of DeviceTensors; its outputs are DeviceTensor views in that order over memory laid out
   * [batch, seqlen, heads, headDim] (host outputs are plain [batch, heads, seqlen, headDim] arrays).
   * lse is [batch, headsQ, seqlenQ] either way.
   */
  layout?: Layout;
}

/** flashAttention()'s options: AttentionOptions, a Stream, and outputs to write in place. */
export interface ForwardCallOptions extends AttentionOptions, Fp8Options, ExecutionOptions {
  /** Written in place: [batch, seqlenQ, headsQ, headDim], q's dtype (outDtype for fp8), q's kind and device. */
  out?: AnyTensor;
  /** Written in place: float32 [batch, headsQ, seqlenQ]. */
  lse?: AnyTensor;
}

/** flashAttentionBackward()'s options: BackwardOptions, a Stream, and gradients to write in place. */
export interface BackwardCallOptions extends BackwardOptions, ExecutionOptions {
  dq?: AnyTensor;
  dk?: AnyTensor;
  dv?: AnyTensor;
}

const FORWARD_OUTPUTS = ['out', 'lse'] as const;
const BACKWARD_OUTPUTS = ['dq', 'dk', 'dv'] as const;

export type { AttentionGradients, AttentionResult } from './api-types';

/** Where a request runs, and why. @internal */
export interface Plan {
  backend: 'cpu' | 'cuda';
  /** CUDA device index (0 for cpu). */
  device: number;
  /** The kernel selection for cuda ('cpu' path for the CPU backend). */
  selection: NativeSelection;
  /** One line on why this backend was chosen. */
  why: string;
}

/** The selection of a request that runs on the CPU backend. @internal */
export const CPU_SELECTION: NativeSelection = { path: 'cpu', kernelHeadDim: 0, reason: '' };

/** Asks the addon's plan which CUDA kernel would run the request. @internal */
export function selectKernel(req: NormalizedRequest): NativeSelection {
  try {
    return native().select({
      op: req.op,
      device: req.deviceIndex,
      dtype: req.dtype,
      headDim: req.dims.headDim,
      seqlenQ: req.dims.seqlenQ,
      seqlenK: req.dims.seqlenK,
      headsQ: req.dims.headsQ,
      headsKV: req.dims.headsKV,
      windowLeft: req.windowLeft,
      windowRight: req.windowRight,
      scale: req.scale,
      batch: req.dims.batch,
      deterministic: req.deterministic,
    });
  } catch (err) {
    throw rewrap(err, 'select');
  }
}

/** Picks the backend for a normalized request. Throws E_NO_DEVICE / E_UNSUPPORTED. What a GPU can
 * run is the addon's plan's call (cuda/plan/); this only chooses between it and the CPU. @internal */
function makePlan(req: NormalizedRequest, fn: string): Plan {
  const cpu = (why: string): Plan => {
    if (req.dtype === 'float8_e4m3' && req.op === 'backward') {
      throw new FlashAttentionError('E_UNSUPPORTED', `${fn}: float8_e4m3 has no backward pass. ${why}`);
    }
    return { backend: 'cpu', device: 0, selection: CPU_SELECTION, why };
  };
  if (req.kind === 'host' && req.device === 'cpu') return cpu("device: 'cpu' was requested");

  const explicit = req.device === 'cuda' || req.kind === 'device';
  const report = cachedProbe();
  const gpuReason = noGpuReason(report, req.deviceIndex);
  if (gpuReason) {
    if (explicit) {
      const what = req.kind === 'device' ? 'DeviceTensors' : "device: 'cuda'";
      throw new FlashAttentionError(
        'E_NO_DEVICE',
        `${fn}: ${what} needs a usable CUDA GPU, but ${gpuReason}. Use device: 'cpu' or 'auto' to run on the CPU backend`,
      );
    }
    return cpu(`no usable GPU: ${gpuReason}`);
  }
  const selection = selectKernel(req);
  if (selection.path === 'none') {
    const msg = `${fn}: no CUDA kernel for this request on device ${req.deviceIndex}: ${selection.reason}`;
    if (explicit) throw new FlashAttentionError('E_UNSUPPORTED', msg);
    return cpu(msg);
  }
  return {
    backend: 'cuda',
    device: req.deviceIndex,
    selection,
    why: req.device === 'auto' ? 'auto: a CUDA kernel can run it' : `device: 'cuda'`,
  };
}

// Plans per request shape: a call pays for planning once per shape, not once per call.
const planCache = new Map<string, Plan>();
const PLAN_CACHE_LIMIT = 4096;

/** What a plan depends on, in the cache key's order. */
function planInputs(req: NormalizedRequest): unknown[] {
  const d = req.dims;
  return [req.op, req.kind, req.device, req.deviceIndex, req.dtype, d.batch, d.seqlenQ, d.seqlenK, d.headsQ, d.headsKV,
    d.headDim, req.scale, req.windowLeft, req.windowRight, req.deterministic];
}

// The last call's inputs and plan: a run of same-shape calls (a decode loop) skips building the
// key, whose float scale alone costs a number-to-string conversion each call.
let lastInputs: unknown[] = [];
let lastPlan: Plan | undefined;

/** makePlan(), cached per shape key; `fn` names the API function in errors. @internal */
export function plan(req: NormalizedRequest, fn = req.op === 'forward' ? 'flashAttention' : 'flashAttentionBackward'): Plan {
  const inputs = planInputs(req);
  if (lastPlan !== undefined && inputs.every((x, i) => x === lastInputs[i])) return lastPlan;
  const key = inputs.join('|');
  let p = planCache.get(key);
  if (p === undefined) {
    p = makePlan(req, fn);
    if (planCache.size >= PLAN_CACHE_LIMIT) planCache.clear();
    planCache.set(key, p);
  }
  lastInputs = inputs;
  lastPlan = p;
  return p;
}

/** One tensor as the addon takes it. DeviceTensors must have been acquired. */
function arg(t: AnyTensor): NativeTensorArg {
  if (t instanceof DeviceTensor) return t.nativeArg('flashattn'); // acquires it; run() releases
  const a: NativeTensorArg = { data: nativeArray(t.data), shape: t.shape as number[], dtype: t.dtype as NativeDType };
  const strides = (t as { strides?: number[] }).strides;
  if (own(t, 'strides') && strides !== undefined) a.strides = strides;
  return a;
}

/**
 * Test hooks. poisonOutputs: fill every output with NaN before the backend runs, so an element it
 * never writes shows up as NaN instead of a plausible zero (tests set it; it costs a fill).
 * @internal
 */
export const testHooks = { poisonOutputs: false };

/** The options the execution core reads itself (the rest go to validate.ts). @internal */
export interface CoreOptions {
  stream?: Stream;
  layout: Layout;
  outputs: Record<string, AnyTensor | undefined>;
  rest: unknown;
}

/** Whether `key` is an own property of `o`. A Proxy trap that throws reads as "absent" here:
 * validate.ts reads the same object next and reports the throw as E_ARG naming the field. */
function own(o: object, key: string): boolean {
  try {
    return Object.prototype.hasOwnProperty.call(o, key);
  } catch {
    return false;
  }
}

/** Splits `stream`, `layout` (unless withLayout is false: the varlen calls have none) and the
 * caller-provided output options off the user's options (own properties only), and checks their
 * types. @internal */
export function coreOptions(fn: string, options: unknown, outputNames: readonly string[], withLayout = true): CoreOptions {
  // Own properties only, here too: a null-prototype map, and `stream` set explicitly, so nothing
  // on Object.prototype is ever read as an option.
  const result: CoreOptions = {
    stream: undefined,
    layout: 'bshd',
    outputs: Object.create(null) as CoreOptions['outputs'],
    rest: options,
  };
  if (typeof options !== 'object' || options === null) return result;
  const keys = ['stream', ...(withLayout ? ['layout'] : []), ...outputNames];
  if (!keys.some((k) => own(options, k))) return result;
  const rest: Record<string, unknown> = {};
  for (const key of Object.keys(options)) {
    if (!keys.includes(key)) rest[key] = (options as Record<string, unknown>)[key];
  }
  result.rest = rest;
  const o = options as Record<string, unknown>;
  if (own(o, 'stream') && o.stream !== undefined) {
    if (!(o.stream instanceof Stream)) {
      throw new FlashAttentionError('E_ARG', `${fn}: stream must be a Stream (new Stream(deviceIndex)); got ${describeValue(o.stream)}`);
    }
    result.stream = o.stream;
  }
  if (withLayout && own(o, 'layout') && o.layout !== undefined) {
    if (o.layout !== 'bshd' && o.layout !== 'bhsd') {
      throw new FlashAttentionError(
        'E_ARG',
        `${fn}: layout must be 'bshd' ([batch, seqlen, heads, headDim], flash-attn's order) or 'bhsd' ` +
          `([batch, heads, seqlen, headDim], PyTorch SDPA's); got ${describeValue(o.layout)}`,
      );
    }
    result.layout = o.layout;
  }
  for (const name of outputNames) {
    if (!own(o, name) || o[name] === undefined) continue;
    const t = o[name];
    const isHost = typeof t === 'object' && t !== null && own(t, 'data') && own(t, 'shape') && own(t, 'dtype');
    if (!(t instanceof DeviceTensor) && !isHost) {
      throw new FlashAttentionError(
        'E_ARG',
        `${fn}: ${name} must be a tensor (tensor(data, shape, dtype)) or a DeviceTensor to write the result into; got ${describeValue(t)}`,
      );
    }
    result.outputs[name] = t as AnyTensor;
  }
  return result;
}

/** The native stream for a call, checked against the plan's device. @internal */
export function streamFor(fn: string, stream: Stream | undefined, p: Plan): NativeStream | undefined {
  if (stream === undefined) return undefined;
  const handle = stream.handle(fn);
  if (p.backend === 'cuda' && stream.device !== p.device) {
    throw new FlashAttentionError('E_ARG', `${fn}: the stream is on device ${stream.device}, but the call runs on device ${p.device}`);
  }
  return handle;
}

/** A host output for a host call the caller gave none for: allocated here, in the caller's realm
 * (the addon copies the result into it when the call settles). Device outputs are the addon's to
 * allocate, stream-ordered. @internal */
export function hostOutput(req: NormalizedRequest, given: AnyTensor | undefined, shape: number[], dtype: DType): AnyTensor | undefined {
  if (given !== undefined || req.kind !== 'host') return given;
  return tensor(allocHost(dtype, shape.reduce((a, b) => a * b, 1)), shape, dtype);
}

/** The result tensor for one output: the caller's (or hostOutput's), or a new DeviceTensor around
 * what the addon allocated. @internal */
export function wrapOutput(fn: string, given: AnyTensor | undefined, got: NativeOutput, shape: number[], dtype: DType): AnyTensor {
  if (given !== undefined) return given;
  if (got === undefined || ArrayBuffer.isView(got)) {
    throw new FlashAttentionError('E_INTERNAL', `${fn}: the addon returned no device output (this is a bug in flashattn)`);
  }
  return DeviceTensor.fromBuffer(got as NativeDeviceBuffer, shape, dtype);
}

/** A 4-D tensor seen in the kernels' [b, s, h, d] order: a host tensor with strides, or a
 * DeviceTensor view. Views made here are released by `made`. */
interface Permuted {
  tensor: AnyTensor;
  made?: DeviceTensor;
}

/** Sees a call's 4-D tensors in the kernels' [b, s, h, d] order: the identity for 'bshd'; for
 * 'bhsd', strided views (no copy). Disposes the views it made for the call. */
class LayoutViews {
  #bhsd: boolean;
  #made: DeviceTensor[] = [];

  constructor(layout: Layout) {
    this.#bhsd = layout === 'bhsd';
  }

  /** A user tensor as the kernels see it (anything that is not a live 4-D tensor passes through
   * unchanged, for validation to name). */
  in(t: AnyTensor): AnyTensor {
    if (!this.#bhsd) return t;
    let shape: readonly number[] | undefined;
    try {
      shape = shapeOf(t);
    } catch {
      return t; // a hostile object: validation names it
    }
    if (shape?.length !== 4 || (t instanceof DeviceTensor && t.disposed)) return t;
    const p = toBshd(t);
    if (p.made) this.#made.push(p.made);
    return p.tensor;
  }

  /** The user's shape of a [b, s, h, d] output. */
  userShape(bshd: number[]): number[] {
    return this.#bhsd ? [bshd[0], bshd[2], bshd[1], bshd[3]] : bshd;
  }

  /** An output the addon allocated ([b, s, h, d] contiguous) in the user's order. */
  out(t: AnyTensor): AnyTensor {
    if (!this.#bhsd || !(t instanceof DeviceTensor)) return t;
    const [b, sl, h, d] = t.shape;
    const v = t.view(0, [b, h, sl, d], [sl * h * d, d, h * d, 1]);
    t.dispose(); // the view keeps the memory
    return v;
  }

  dispose(): void {
    for (const t of this.#made) t.dispose();
  }
}

/** The [b, h, s, d] tensor `t` as a [b, s, h, d] one (no copy). */
function toBshd(t: AnyTensor): Permuted {
  const [b, h, sl, d] = t.shape;
  if (t instanceof DeviceTensor) {
    const st = t.strides;
    const v = t.view(0, [b, sl, h, d], [st[0], st[2], st[1], st[3]]);
    return { tensor: v, made: v };
  }
  const strided = { data: t.data, shape: [b, sl, h, d], dtype: t.dtype, strides: [h * sl * d, d, sl * d, 1] };
  return { tensor: strided as unknown as HostTensor };
}

/** Why shapes that failed in one layout would pass in the other: '' when they would not. */
function otherLayoutHint(layout: Layout, shapes: (readonly number[] | undefined)[]): string {
  // The shapes are the user's, unvalidated (validation just failed): copy them once, and give no
  // hint for anything but plain arrays of four numbers (a getter or a bigint is the error itself).
  let plain: number[][];
  try {
    plain = shapes.map((x) => (x ? Array.from(x) : []));
  } catch {
    return '';
  }
  if (!plain.every((x) => x.length === 4 && x.every((n) => typeof n === 'number' && Number.isSafeInteger(n)))) return '';
  const [q, k, v] = plain;
  // The user's shapes read in the other layout, as the kernels' [b, s, h, d].
  const swap = (x: readonly number[]) => (layout === 'bshd' ? [x[0], x[2], x[1], x[3]] : [...x]);
  const [sq, sk, sv] = [swap(q), swap(k), swap(v)];
  const ok =
    sq[0] === sk[0] && sk.every((x, i) => x === sv[i]) && sq[3] === sk[3] && sk[2] > 0 && sq[2] % sk[2] === 0;
  if (!ok) return '';
  const other = layout === 'bshd' ? 'bhsd' : 'bshd';
  const order = other === 'bhsd' ? '[batch, heads, seqlen, headDim] (PyTorch SDPA order)' : '[batch, seqlen, heads, headDim]';
  return `. These shapes fit layout '${other}' ${order}: pass layout: '${other}'`;
}

/** Normalizes a request, adding a layout hint to a shape error that the other layout would fix.
 * The user's tensors are looked at only after validation has refused them, and only as far as it
 * is safe (a throwing Proxy or odd dims just mean no hint). */
function normalized<T>(layout: Layout, tensors: unknown[], f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof FlashAttentionError && e.code === 'E_SHAPE') {
      let hint = '';
      try {
        hint = otherLayoutHint(layout, tensors.map(shapeOf));
      } catch {
        hint = '';
      }
      if (hint) throw new FlashAttentionError('E_SHAPE', e.message + hint, { cause: e });
    }
    throw e;
  }
}

function shapeOf(t: unknown): readonly number[] | undefined {
  if (t instanceof DeviceTensor) return t.shape;
  if (typeof t === 'object' && t !== null && own(t, 'shape') && Array.isArray((t as { shape: unknown }).shape)) {
    return (t as { shape: number[] }).shape;
  }
  return undefined;
}

/** What every native request carries. The op's own fields go on with Object.assign, not an object
 * spread: V8 (Node 20) makes `{ ...common(), q, k, v }` a slow object, about 4 us a call. @internal */
export function common(req: NormalizedRequest, p: Plan, stream: NativeStream | undefined): NativeCommon {
  const c: NativeCommon = {
    backend: p.backend,
    device: p.device,
    scale: req.scale,
    windowLeft: req.windowLeft,
    windowRight: req.windowRight,
    threads: req.threads,
    poison: testHooks.poisonOutputs,
  };
  if (stream) c.stream = stream;
  return c;
}

/** The fp8 descale tensors of a forward request, by native request field. */
function fp8Descales(req: NormalizedRequest): ['qDescale' | 'kDescale' | 'vDescale', AnyTensor][] {
  const out: ['qDescale' | 'kDescale' | 'vDescale', AnyTensor][] = [];
  for (const role of ['q', 'k', 'v'] as const) {
    const d = req.descale[role];
    if (d) out.push([`${role}Descale`, d.value as AnyTensor]);
  }
  return out;
}

/** Runs one native call with every DeviceTensor in `tensors` kept alive until it settles. @internal */
export async function run<R>(fn: string, tensors: AnyTensor[], call: (args: NativeTensorArg[]) => Promise<R>): Promise<R> {
  const acquired: DeviceTensor[] = [];
  try {
    // Acquire before the first await: a caller may dispose() its inputs right after starting the
    // call, and the tensors must then stay alive until the call ends.
    const args: NativeTensorArg[] = [];
    for (const t of tensors) {
      args.push(arg(t));
      if (t instanceof DeviceTensor) acquired.push(t);
    }
    return await polled(call(args));
  } catch (e) {
    throw rewrap(e, fn);
  } finally {
    for (const t of acquired) t.release();
  }
}

/**
 * Exact attention softmax(scale · q kᵀ + mask) v, FlashAttention-style (tiled, never forming the
 * score matrix). q: [batch, seqlenQ, headsQ, headDim]; k, v: [batch, seqlenK, headsKV, headDim].
 * Host tensors in → host tensors out; DeviceTensors in → DeviceTensors out.
 */
export async function flashAttention<D extends DType>(
  q: DeviceTensor<D>,
  k: DeviceTensor<D>,
  v: DeviceTensor<D>,
  options?: ForwardCallOptions,
): Promise<AttentionResult<DeviceTensor<OutDType<D>>, DeviceTensor<'float32'>>>;
export async function flashAttention<D extends DType>(
  q: HostTensor<D>,
  k: HostTensor<D>,
  v: HostTensor<D>,
  options?: ForwardCallOptions,
): Promise<AttentionResult<HostTensor<OutDType<D>>, HostTensor<'float32'>>>;
export async function flashAttention(
  q: AnyTensor,
  k: AnyTensor,
  v: AnyTensor,
  options?: ForwardCallOptions,
): Promise<AttentionResult>;
export async function flashAttention(
  q: AnyTensor,
  k: AnyTensor,
  v: AnyTensor,
  options?: ForwardCallOptions,
): Promise<AttentionResult> {
  const fn = 'flashAttention';
  const core = coreOptions(fn, options, FORWARD_OUTPUTS);
  const lay = new LayoutViews(core.layout);
  try {
    const [kq, kk, kv] = [lay.in(q), lay.in(k), lay.in(v)];
    const req = normalized(core.layout, [q, k, v], () => normalizeForward(kq, kk, kv, core.rest));
    const p = plan(req);
    const stream = streamFor(fn, core.stream, p);
    const { batch, seqlenQ, headsQ, headDim } = req.dims;
    const outDtype: DType = req.outDtype;
    const userOut = hostOutput(req, core.outputs.out, lay.userShape([batch, seqlenQ, headsQ, headDim]), outDtype);
    const givenLse = hostOutput(req, core.outputs.lse, [batch, headsQ, seqlenQ], 'float32');
    const givenOut = userOut && lay.in(userOut);
    const tensors = [kq, kk, kv];
    if (givenOut) tensors.push(givenOut);
    if (givenLse) tensors.push(givenLse);
    const descales = fp8Descales(req); // fp8: [role, tensor] for each descale given
    for (const [, t] of descales) tensors.push(t);
    const res = await run(fn, tensors, ([aq, ak, av, ...rest]) => {
      const request: NativeForwardRequest = Object.assign(common(req, p, stream), { q: aq, k: ak, v: av, naive: false });
      if (givenOut) request.out = rest.shift();
      if (givenLse) request.lse = rest.shift();
      if (req.dtype === 'float8_e4m3') request.outDtype = outDtype as NativeDType;
      for (const [role] of descales) request[role] = rest.shift();
      return forwardFlat(native(), request);
    });
    const out = userOut ?? lay.out(wrapOutput(fn, undefined, res.out, [batch, seqlenQ, headsQ, headDim], outDtype));
    let lse: AnyTensor;
    try {
      lse = wrapOutput(fn, givenLse, res.lse, [batch, headsQ, seqlenQ], 'float32');
    } catch (e) {
      if (out !== userOut && out instanceof DeviceTensor) out.dispose();
      throw e;
    }
    return { out, lse };
  } finally {
    lay.dispose();
  }
}

/**
 * Gradients of flashAttention(): given dout (like out) and the forward's out and lse, returns
 * dq (like q) and dk, dv (like k and v; summed over the query heads that share a KV head).
 */
export async function flashAttentionBackward<D extends DType>(
  dout: DeviceTensor<D>,
  q: DeviceTensor<D>,
  k: DeviceTensor<D>,
  v: DeviceTensor<D>,
  out: DeviceTensor<D>,
  lse: DeviceTensor<'float32'>,
  options?: BackwardCallOptions,
): Promise<AttentionGradients<DeviceTensor<D>>>;
export async function flashAttentionBackward<D extends DType>(
  dout: HostTensor<D>,
  q: HostTensor<D>,
  k: HostTensor<D>,
  v: HostTensor<D>,
  out: HostTensor<D>,
  lse: HostTensor<'float32'>,
  options?: BackwardCallOptions,
): Promise<AttentionGradients<HostTensor<D>>>;
export async function flashAttentionBackward(
  dout: AnyTensor,
  q: AnyTensor,
  k: AnyTensor,
  v: AnyTensor,
  out: AnyTensor,
  lse: AnyTensor,
  options?: BackwardCallOptions,
): Promise<AttentionGradients>;
export async function flashAttentionBackward(
  dout: AnyTensor,
  q: AnyTensor,
  k: AnyTensor,
  v: AnyTensor,
  out: AnyTensor,
  lse: AnyTensor,
  options?: BackwardCallOptions,
): Promise<AttentionGradients> {
  const fn = 'flashAttentionBackward';
  const core = coreOptions(fn, options, BACKWARD_OUTPUTS);
  const lay = new LayoutViews(core.layout);
  try {
    const ins = [lay.in(dout), lay.in(q), lay.in(k), lay.in(v), lay.in(out), lse];
    const req = normalized(core.layout, [q, k, v], () =>
      normalizeBackward(ins[0], ins[1], ins[2], ins[3], ins[4], ins[5], core.rest),
    );
    const p = plan(req);
    const stream = streamFor(fn, core.stream, p);
    const { batch, seqlenQ, seqlenK, headsQ, headsKV, headDim } = req.dims;
    const qShape = [batch, seqlenQ, headsQ, headDim];
    const kShape = [batch, seqlenK, headsKV, headDim];
    const user = [
      hostOutput(req, core.outputs.dq, lay.userShape(qShape), req.dtype),
      hostOutput(req, core.outputs.dk, lay.userShape(kShape), req.dtype),
      hostOutput(req, core.outputs.dv, lay.userShape(kShape), req.dtype),
    ];
    const given = user.map((t) => t && lay.in(t));
    const tensors = [...ins];
    for (const g of given) if (g) tensors.push(g);
    const res = await run(fn, tensors, ([adout, aq, ak, av, aout, alse, ...rest]) => {
      const request: NativeBackwardRequest = Object.assign(common(req, p, stream), {
        dout: adout,
        q: aq,
        k: ak,
        v: av,
        out: aout,
        lse: alse,
        deterministic: req.deterministic,
      });
      if (given[0]) request.dq = rest.shift();
      if (given[1]) request.dk = rest.shift();
      if (given[2]) request.dv = rest.shift();
      return native().backward(request);
    });
    const got = [res.dq, res.dk, res.dv];
    const shapes = [qShape, kShape, kShape];
    const made: AnyTensor[] = [];
    try {
      for (let i = 0; i < 3; i++) made.push(user[i] ?? lay.out(wrapOutput(fn, undefined, got[i], shapes[i], req.dtype)));
    } catch (e) {
      for (const t of made) if (t instanceof DeviceTensor && !user.includes(t)) t.dispose();
      throw e;
    }
    const [dq, dk, dv] = made;
    return { dq, dk, dv };
  } finally {
    lay.dispose();
  }
}

/** The backend a call with these arguments would use, without running it. @internal */
export function planAttention(q: AnyTensor, k: AnyTensor, v: AnyTensor, options?: AttentionOptions): Plan {
  return plan(normalizeForward(q, k, v, options));
}

