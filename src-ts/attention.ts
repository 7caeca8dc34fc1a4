// attention.ts — flashAttention() and flashAttentionBackward(): validate, pick the backend,
// allocate the outputs, and hand one request to the addon, which fills them in.
import type { AttentionGradients, AttentionResult, OutDType } from './api-types';
import type { NativeCommon, NativeSelection, NativeTensorArg } from './binding';
import { DeviceTensor } from './device-tensor';
import { type DType, type HostArray, allocHost, nativeArray } from './dtype';
import { FlashAttentionError, rewrap } from './errors';
import { cachedProbe, native, noGpuReason } from './probe';
import { type HostTensor, tensor } from './tensor';
import {
  type AnyTensor,
  type AttentionOptions,
  type BackwardOptions,
  type NormalizedRequest,
  normalizeBackward,
  normalizeForward,
} from './validate';

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

const CPU_SELECTION: NativeSelection = { path: 'cpu', kernelHeadDim: 0, reason: '' };

/** Asks the addon which CUDA kernel would run the request. @internal */
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
    });
  } catch (err) {
    throw rewrap(err, 'select');
  }
}

/** Why CUDA cannot run this request at all ('' when it might; select() has the last word). */
function cudaProblem(req: NormalizedRequest, fn: string): string {
  if (req.dtype === 'float32') {
    return `${fn}: float32 runs on the CPU backend only; the CUDA kernels take float16 or bfloat16 ` +
      "(convert with toFloat16()/toBfloat16(), or use device 'cpu'/'auto')";
  }
  if (req.dtype === 'float8_e4m3') {
    const dev = cachedProbe().devices.find((d) => d.index === req.deviceIndex);
    if (req.op === 'backward') return `${fn}: float8_e4m3 has no backward pass`;
    if (!dev || dev.capability[0] !== 9) {
      return `${fn}: float8_e4m3 needs a Hopper GPU (capability 9.0); device ${req.deviceIndex} is ` +
        (dev ? `${dev.name} (capability ${dev.capability.join('.')})` : 'not present');
    }
  }
  // select() is asked with the default scale (NativeSelectRequest carries none), so the kernels'
  // positive-scale requirement is checked here.
  if (!(req.scale > 0)) {
    return `${fn}: the CUDA kernels need a positive softmaxScale (got ${req.scale}); use device 'cpu' for other scales`;
  }
  return '';
}

/** Picks the backend for a normalized request. Throws E_NO_DEVICE / E_UNSUPPORTED. @internal */
export function plan(req: NormalizedRequest): Plan {
  const fn = req.op === 'forward' ? 'flashAttention' : 'flashAttentionBackward';
  const cpu = (why: string): Plan => {
    if (req.dtype === 'float8_e4m3') {
      throw new FlashAttentionError(
        'E_UNSUPPORTED',
        `${fn}: float8_e4m3 runs only on Hopper GPUs (CUDA forward); the CPU backend takes float32, float16 and bfloat16. ${why}`,
      );
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
  const dtypeProblem = cudaProblem(req, fn);
  if (dtypeProblem) {
    if (explicit) throw new FlashAttentionError('E_UNSUPPORTED', dtypeProblem);
    return cpu(dtypeProblem);
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

function common(req: NormalizedRequest, p: Plan): NativeCommon {
  return {
    backend: p.backend,
    device: p.device,
    scale: req.scale,
    windowLeft: req.windowLeft,
    windowRight: req.windowRight,
    threads: req.threads,
  };
}

/** One tensor as the addon takes it. DeviceTensors must have been acquired. */
function arg(t: AnyTensor): NativeTensorArg {
  if (t instanceof DeviceTensor) {
    // acquire() was called by the caller; this only reads the buffer.
    return { data: t.acquire('flashattn'), shape: [...t.shape], dtype: t.dtype };
  }
  return { data: nativeArray(t.data), shape: [...t.shape], dtype: t.dtype };
}

/**
 * Test hooks. poisonOutputs: fill every output with NaN before the backend runs, so an element it
 * never writes shows up as NaN instead of a plausible zero (tests set it; it costs a fill).
 * @internal
 */
export const testHooks = { poisonOutputs: false };

function nanArray(dtype: DType, size: number): HostArray {
  const a = allocHost(dtype, size);
  // 0xffff is a NaN in float16 and bfloat16; 0x7f in float8_e4m3.
  if (a instanceof Float32Array) a.fill(NaN);
  else if (a instanceof Uint16Array) a.fill(0xffff);
  else a.fill(0x7f);
  return a;
}

/** Allocates an output like the inputs: host array, or DeviceTensor on `device`. */
function output(kind: 'host' | 'device', shape: number[], dtype: DType, device: number): AnyTensor {
  if (kind === 'device') return DeviceTensor.empty(shape, dtype, device);
  const size = shape.reduce((a, b) => a * b, 1);
  return tensor(testHooks.poisonOutputs ? nanArray(dtype, size) : allocHost(dtype, size), shape, dtype);
}

/** Fills device outputs with NaN when testHooks.poisonOutputs is set. */
async function poisonDevice(outputs: AnyTensor[]): Promise<void> {
  if (!testHooks.poisonOutputs) return;
  for (const t of outputs) {
    if (t instanceof DeviceTensor && t.size > 0) {
      await t.use('poison', (buf) => buf.upload(nanArray(t.dtype, t.size)));
    }
  }
}

/** Runs `body` with every DeviceTensor in `tensors` kept alive; disposes `outputs` on failure. */
async function withTensors<T>(
  fn: string,
  inputs: AnyTensor[],
  outputs: AnyTensor[],
  body: (args: NativeTensorArg[]) => Promise<void>,
  result: T,
): Promise<T> {
  const all = [...inputs, ...outputs];
  const acquired: DeviceTensor[] = [];
  try {
    // Acquire before the first await: a caller may dispose() its inputs right after starting the
    // call, and the tensors must then stay alive until the call ends.
    const args: NativeTensorArg[] = [];
    for (const t of all) {
      args.push(arg(t));
      if (t instanceof DeviceTensor) acquired.push(t);
    }
    await poisonDevice(outputs);
    await body(args);
    return result;
  } catch (e) {
    for (const t of outputs) if (t instanceof DeviceTensor) t.dispose();
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
  options?: AttentionOptions,
): Promise<AttentionResult<DeviceTensor<OutDType<D>>, DeviceTensor<'float32'>>>;
export async function flashAttention<D extends DType>(
  q: HostTensor<D>,
  k: HostTensor<D>,
  v: HostTensor<D>,
  options?: AttentionOptions,
): Promise<AttentionResult<HostTensor<OutDType<D>>, HostTensor<'float32'>>>;
export async function flashAttention(
  q: AnyTensor,
  k: AnyTensor,
  v: AnyTensor,
  options?: AttentionOptions,
): Promise<AttentionResult>;
export async function flashAttention(
  q: AnyTensor,
  k: AnyTensor,
  v: AnyTensor,
  options?: AttentionOptions,
): Promise<AttentionResult> {
  const fn = 'flashAttention';
  const req = normalizeForward(q, k, v, options);
  const p = plan(req);
  const { batch, seqlenQ, headsQ, headDim } = req.dims;
  const outDtype: DType = req.dtype === 'float8_e4m3' ? 'bfloat16' : req.dtype;
  const out = output(req.kind, [batch, seqlenQ, headsQ, headDim], outDtype, p.device);
  let lse: AnyTensor;
  try {
    lse = output(req.kind, [batch, headsQ, seqlenQ], 'float32', p.device);
  } catch (e) {
    if (out instanceof DeviceTensor) out.dispose();
    throw e;
  }
  return withTensors(
    fn,
    [q, k, v],
    [out, lse],
    async ([aq, ak, av, aout, alse]) => {
      await native().forward({ ...common(req, p), q: aq, k: ak, v: av, out: aout, lse: alse, naive: false });
    },
    { out, lse },
  );
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
  options?: BackwardOptions,
): Promise<AttentionGradients<DeviceTensor<D>>>;
export async function flashAttentionBackward<D extends DType>(
  dout: HostTensor<D>,
  q: HostTensor<D>,
  k: HostTensor<D>,
  v: HostTensor<D>,
  out: HostTensor<D>,
  lse: HostTensor<'float32'>,
  options?: BackwardOptions,
): Promise<AttentionGradients<HostTensor<D>>>;
export async function flashAttentionBackward(
  dout: AnyTensor,
  q: AnyTensor,
  k: AnyTensor,
  v: AnyTensor,
  out: AnyTensor,
  lse: AnyTensor,
  options?: BackwardOptions,
): Promise<AttentionGradients>;
export async function flashAttentionBackward(
  dout: AnyTensor,
  q: AnyTensor,
  k: AnyTensor,
  v: AnyTensor,
  out: AnyTensor,
  lse: AnyTensor,
  options?: BackwardOptions,
): Promise<AttentionGradients> {
  const fn = 'flashAttentionBackward';
  const req = normalizeBackward(dout, q, k, v, out, lse, options);
  const p = plan(req);
  const made: AnyTensor[] = [];
  try {
    made.push(output(req.kind, [...q.shape], req.dtype, p.device));
    made.push(output(req.kind, [...k.shape], req.dtype, p.device));
    made.push(output(req.kind, [...v.shape], req.dtype, p.device));
  } catch (e) {
    for (const t of made) if (t instanceof DeviceTensor) t.dispose();
    throw e;
  }
  const [dq, dk, dv] = made;
  return withTensors(
    fn,
    [dout, q, k, v, out, lse],
    [dq, dk, dv],
    async ([adout, aq, ak, av, aout, alse, adq, adk, adv]) => {
      await native().backward({
        ...common(req, p),
        dout: adout,
        q: aq,
        k: ak,
        v: av,
        out: aout,
        lse: alse,
        dq: adq,
        dk: adk,
        dv: adv,
        deterministic: req.deterministic,
      });
    },
    { dq, dk, dv },
  );
}

/** The backend a call with these arguments would use, without running it. @internal */
export function planAttention(q: AnyTensor, k: AnyTensor, v: AnyTensor, options?: AttentionOptions): Plan {
  return plan(normalizeForward(q, k, v, options));
}

