// helpers.ts — shared test machinery: seeded random inputs, decoding, the error rules, and one
// harness that runs a configuration through the API and checks it against the float64 reference.
import { testHooks } from '../src-ts/attention';
import { DeviceTensor } from '../src-ts/device-tensor';
import { type DType, type HostArray, toBfloat16, toFloat16 } from '../src-ts/dtype';
import { FlashAttentionError } from '../src-ts/errors';
import { flashAttention, flashAttentionBackward } from '../src-ts/index';
import { type HostTensor, tensor } from '../src-ts/tensor';
import { naiveBackwardInDtype, naiveForwardInDtype } from './naive-dtype';
import { BFLOAT16, FLOAT16, type Format, valueOf } from './numeric';
import { type RefDims, type RefOptions, referenceBackward, referenceForward } from './reference';

// Every output the API allocates during tests starts as NaN, so an element the backend never
// writes fails the comparison instead of passing as a zero.
testHooks.poisonOutputs = true;

// ---- random numbers -------------------------------------------------------------------------

/** A seeded PRNG (mulberry32); the seed goes into every failure message. */
export interface Rng {
  seed: number;
  next(): number; // [0, 1)
  normal(): number;
}

export function makeRng(seed = Math.floor(Math.random() * 2 ** 32)): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare: number | undefined;
  const normal = () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = next();
    const v = next();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
  return { seed, next, normal };
}

// ---- tensors --------------------------------------------------------------------------------

/** Random N(0, std²) values stored as `dtype`. */
export function randomTensor(shape: number[], dtype: DType, rng: Rng, std = 1): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = rng.normal() * std;
  const data: HostArray = dtype === 'float32' ? f : dtype === 'float16' ? toFloat16(f) : toBfloat16(f);
  return tensor(data, shape, dtype);
}

const tables = new Map<string, Float64Array>();
function table(fmt: Format): Float64Array {
  let t = tables.get(fmt.name);
  if (!t) {
    t = new Float64Array(65536);
    for (let i = 0; i < 65536; i++) t[i] = valueOf(i, fmt);
    tables.set(fmt.name, t);
  }
  return t;
}

/** The values of a host tensor as float64, decoded by the test's own format code. */
export function values(t: HostTensor): Float64Array {
  const n = t.data.length;
  const out = new Float64Array(n);
  if (t.dtype === 'float32') {
    for (let i = 0; i < n; i++) out[i] = t.data[i];
    return out;
  }
  if (t.dtype !== 'float16' && t.dtype !== 'bfloat16') throw new Error(`values(): ${t.dtype}`);
  const tab = table(t.dtype === 'float16' ? FLOAT16 : BFLOAT16);
  for (let i = 0; i < n; i++) out[i] = tab[t.data[i]];
  return out;
}

/** A tensor filled with NaN (bits 0xffff are NaN in both float16 and bfloat16). */
export function nanTensor(shape: number[], dtype: DType): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (dtype === 'float32') return tensor(new Float32Array(n).fill(NaN), shape, dtype);
  return tensor(new Uint16Array(n).fill(0xffff), shape, dtype);
}

export async function host(t: HostTensor | DeviceTensor): Promise<HostTensor> {
  return t instanceof DeviceTensor ? t.toHost() : t;
}

// ---- comparisons ------------------------------------------------------------------------------

export interface Diff {
  max: number;
  index: number;
}

/** Largest |a − b|; NaN anywhere (or Inf against a finite value) gives Infinity. Matching infinities count as 0. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): Diff {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  let index = -1;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    let d: number;
    if (Number.isNaN(x) || Number.isNaN(y)) d = Infinity;
    else if (x === y) d = 0;
    else d = Math.abs(x - y);
    if (d > max || (index < 0 && d === Infinity)) {
      max = d;
      index = i;
    }
  }
  return { max, index };
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export function countNaN(a: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (Number.isNaN(a[i])) n++;
  return n;
}

function fail(what: string, ctx: string, detail: string): never {
  throw new Error(`${what} [${ctx}]: ${detail}`);
}

/** float32 rule: max |ours − ref| ≤ rel · max |ref| (+ abs). */
export function assertClose(
  what: string,
  ours: ArrayLike<number>,
  ref: ArrayLike<number>,
  ctx: string,
  rel = 1e-5,
  abs = 1e-6,
): void {
  const nan = countNaN(ours);
  if (nan) fail(what, ctx, `${nan} NaN element(s) (first unwritten or invalid)`);
  const { max, index } = maxAbsDiff(ours, ref);
  const bound = rel * maxAbs(ref) + abs;
  if (!(max <= bound)) {
    fail(what, ctx, `max |ours − ref| = ${max} at ${index} (ours ${ours[index]}, ref ${ref[index]}) > ${bound}`);
  }
}

/**
 * flash-attn's rule for 16-bit dtypes: max |ours − ref| ≤ 2 · max |naive-in-dtype − ref| + eps,
 * where eps is the rounding error of the dtype around the values (flash-attn's fwd_atol idea).
 */
export function assertRule(
  what: string,
  ours: ArrayLike<number>,
  ref: ArrayLike<number>,
  naive: ArrayLike<number>,
  dtype: DType,
  ctx: string,
): void {
  const nan = countNaN(ours);
  if (nan) fail(what, ctx, `${nan} NaN element(s) (first unwritten or invalid)`);
  const fmt = dtype === 'float16' ? FLOAT16 : BFLOAT16;
  const ours64 = maxAbsDiff(ours, ref);
  const naive64 = maxAbsDiff(naive, ref);
  const eps = 2 ** -fmt.mantissaBits * Math.max(maxAbs(ref), 1e-3) * 0.5;
  const bound = 2 * naive64.max + eps;
  if (!(ours64.max <= bound)) {
    fail(
      what,
      ctx,
      `max |ours − ref64| = ${ours64.max} at ${ours64.index} (ours ${ours[ours64.index]}, ref ${ref[ours64.index]}) > ` +
        `2 × max |naive-${dtype} − ref64| (${naive64.max}) + ${eps}`,
    );
  }
}

/** LSE: -Infinity exactly where the reference has it; elsewhere |ours − ref| ≤ tol · max(1, |ref|). */
export function assertLse(ours: ArrayLike<number>, ref: ArrayLike<number>, ctx: string, tol = 2e-5): void {
  for (let i = 0; i < ref.length; i++) {
    const o = ours[i];
    const r = ref[i];
    if (Number.isNaN(o)) fail('lse', ctx, `NaN at ${i}`);
    if (r === -Infinity) {
      if (o !== -Infinity) fail('lse', ctx, `row ${i} sees no key: expected -Infinity, got ${o}`);
      continue;
    }
    if (!(Math.abs(o - r) <= tol * Math.max(1, Math.abs(r)))) fail('lse', ctx, `at ${i}: ours ${o}, ref ${r}`);
  }
}

// ---- the harness --------------------------------------------------------------------------------

export interface Case {
  batch?: number;
  seqlenQ: number;
  seqlenK?: number;
  headsQ?: number;
  headsKV?: number;
  headDim?: number;
  dtype?: DType;
  causal?: boolean;
  windowSize?: [number, number];
  softmaxScale?: number;
  device?: 'auto' | 'cpu' | 'cuda';
  /** Run on DeviceTensors instead of host tensors. */
  deviceTensors?: boolean;
  backward?: boolean;
  deterministic?: boolean;
  /** float32 relative tolerance. */
  rel?: number;
  lseTol?: number;
}

export interface CaseData {
  dims: RefDims;
  opts: RefOptions;
  q: HostTensor;
  k: HostTensor;
  v: HostTensor;
  ctx: string;
}

export function caseDims(c: Case): RefDims {
  return {
    batch: c.batch ?? 1,
    seqlenQ: c.seqlenQ,
    seqlenK: c.seqlenK ?? c.seqlenQ,
    headsQ: c.headsQ ?? 2,
    headsKV: c.headsKV ?? c.headsQ ?? 2,
    headDim: c.headDim ?? 32,
  };
}

export function describeCase(c: Case, seed: number): string {
  const d = caseDims(c);
  const mask = c.windowSize ? `window [${c.windowSize}]${c.causal ? ' causal' : ''}` : c.causal ? 'causal' : 'full';
  return `${c.dtype ?? 'float32'} b${d.batch} sq${d.seqlenQ} sk${d.seqlenK} hq${d.headsQ} hkv${d.headsKV} d${d.headDim} ${mask}` +
    `${c.softmaxScale !== undefined ? ` scale ${c.softmaxScale}` : ''} device ${c.device ?? 'auto'}` +
    `${c.deviceTensors ? ' (DeviceTensors)' : ''} seed ${seed}`;
}

export function makeCase(c: Case, rng = makeRng()): CaseData {
  const dims = caseDims(c);
  const dtype = c.dtype ?? 'float32';
  const q = randomTensor([dims.batch, dims.seqlenQ, dims.headsQ, dims.headDim], dtype, rng);
  const k = randomTensor([dims.batch, dims.seqlenK, dims.headsKV, dims.headDim], dtype, rng);
  const v = randomTensor([dims.batch, dims.seqlenK, dims.headsKV, dims.headDim], dtype, rng);
  return {
    dims,
    opts: { scale: c.softmaxScale, causal: c.causal, windowSize: c.windowSize },
    q,
    k,
    v,
    ctx: describeCase(c, rng.seed),
  };
}

function apiOptions(c: Case) {
  return {
    ...(c.causal !== undefined ? { causal: c.causal } : {}),
    ...(c.windowSize ? { windowSize: c.windowSize } : {}),
    ...(c.softmaxScale !== undefined ? { softmaxScale: c.softmaxScale } : {}),
    ...(c.device ? { device: c.device } : {}),
  };
}

export interface CaseResult {
  out: HostTensor;
  lse: HostTensor;
  dq?: HostTensor;
  dk?: HostTensor;
  dv?: HostTensor;
}

/** Runs forward (and backward) through the public API; returns host results. */
export async function runApi(c: Case, data: CaseData, dout?: HostTensor): Promise<CaseResult> {
  const opts = apiOptions(c);
  if (c.deviceTensors) {
    const dq = await DeviceTensor.from(data.q);
    const dk = await DeviceTensor.from(data.k);
    const dv = await DeviceTensor.from(data.v);
    const made: DeviceTensor[] = [dq, dk, dv];
    try {
      const f = await flashAttention(dq, dk, dv, opts);
      made.push(f.out, f.lse);
      if (!(f.out instanceof DeviceTensor) || !(f.lse instanceof DeviceTensor)) {
        throw new Error('DeviceTensors in must give DeviceTensors out');
      }
      const res: CaseResult = { out: await f.out.toHost(), lse: await f.lse.toHost() };
      if (dout) {
        const ddout = await DeviceTensor.from(dout);
        made.push(ddout);
        const g = await flashAttentionBackward(ddout, dq, dk, dv, f.out, f.lse, { ...opts, deterministic: c.deterministic });
        made.push(g.dq, g.dk, g.dv);
        res.dq = await g.dq.toHost();
        res.dk = await g.dk.toHost();
        res.dv = await g.dv.toHost();
      }
      return res;
    } finally {
      for (const t of made) t.dispose();
    }
  }
  const f = await flashAttention(data.q, data.k, data.v, opts);
  const res: CaseResult = { out: f.out, lse: f.lse };
  if (dout) {
    const g = await flashAttentionBackward(dout, data.q, data.k, data.v, f.out, f.lse, {
      ...opts,
      deterministic: c.deterministic,
    });
    Object.assign(res, g);
  }
  return res;
}

/**
 * Runs one configuration through the API and checks out, lse (and dq, dk, dv) against the
 * float64 reference: float32 by relative error, 16-bit dtypes by the flash-attn rule.
 */
export async function checkCase(c: Case, rng = makeRng()): Promise<CaseResult> {
  const data = makeCase(c, rng);
  const dtype = c.dtype ?? 'float32';
  const dout = c.backward ? randomTensor([...data.q.shape], dtype, rng) : undefined;
  const res = await runApi(c, data, dout);
  const qv = values(data.q);
  const kv = values(data.k);
  const vv = values(data.v);
  const ref = referenceForward(qv, kv, vv, data.dims, data.opts);
  expectShape(res.out, [...data.q.shape], dtype, 'out');
  expectShape(res.lse, [data.dims.batch, data.dims.headsQ, data.dims.seqlenQ], 'float32', 'lse');
  const out = values(res.out);
  if (dtype === 'float32') assertClose('out', out, ref.out, data.ctx, c.rel);
  else assertRule('out', out, ref.out, naiveForwardInDtype(qv, kv, vv, data.dims, data.opts, dtype), dtype, data.ctx);
  assertLse(values(res.lse), ref.lse, data.ctx, c.lseTol);
  if (dout) {
    const dov = values(dout);
    const g = referenceBackward(dov, qv, kv, vv, data.dims, data.opts);
    const naive = dtype === 'float32' ? undefined : naiveBackwardInDtype(dov, qv, kv, vv, data.dims, data.opts, dtype);
    // float32 gradients: relative to the largest gradient entry (a gradient that is exactly 0 in
    // float64, e.g. dk with one key, is a cancellation in float32).
    const gradScale = Math.max(1, maxAbs(g.dq), maxAbs(g.dk), maxAbs(g.dv));
    for (const name of ['dq', 'dk', 'dv'] as const) {
      const t = res[name]!;
      expectShape(t, [...(name === 'dq' ? data.q.shape : data.k.shape)], dtype, name);
      if (naive) assertRule(name, values(t), g[name], naive[name], dtype, data.ctx);
      else assertClose(name, values(t), g[name], data.ctx, c.rel ?? 2e-5, (c.rel ?? 2e-5) * gradScale);
    }
  }
  return res;
}

export function expectShape(t: HostTensor, shape: number[], dtype: DType, what: string): void {
  if (t.dtype !== dtype || t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
    throw new Error(`${what}: expected ${dtype} ${JSON.stringify(shape)}, got ${t.dtype} ${JSON.stringify(t.shape)}`);
  }
}

/** Awaits `p` and checks it rejects with a FlashAttentionError of `code`; returns the error. */
export async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string): Promise<FlashAttentionError> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  if (!(err instanceof FlashAttentionError)) {
    throw new Error(`expected a FlashAttentionError ${code}, got ${err === undefined ? 'no error' : String(err)}`);
  }
  if (err.code !== code) throw new Error(`expected code ${code}, got ${err.code}: ${err.message}`);
  return err;
}

/** Whether the loaded addon sees a usable GPU (decides which device-selection behaviour to expect). */
export { noGpuReason } from '../src-ts/probe';
