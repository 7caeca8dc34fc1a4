// varlen.ts — flashAttentionVarlen() and flashAttentionVarlenBackward(): flash-attn's
// flash_attn_varlen_func for batches of sequences of different lengths packed along one token
// axis, with no padding. Reads the user's options (own properties only), allocates the host
// outputs, and hands one request to the addon, which checks every shape, dtype and offset value
// (native/varlen/varlen_request.cpp) and runs each sequence as a batch of one: on the CPU backend,
// or on CUDA on the kernels the plan picks for that sequence's lengths (native/varlen/varlen_cuda.h).
import type { AttentionGradients, AttentionResult } from './api-types';
import { common, coreOptions, hostOutput, plan, run, streamFor, wrapOutput } from './attention';
import { type DType } from './dtype';
import { native } from './probe';
import type { Stream } from './stream';
import type { DeviceTensor } from './device-tensor';
import type { HostTensor } from './tensor';
import type { NativeOutput, NativeVarlenBackwardRequest, NativeVarlenForwardRequest } from './binding';
import {
  type AnyTensor,
  type AttentionDims,
  type AttentionOptions,
  type BackwardOptions,
  normalizeVarlen,
} from './validate';

/** Offsets of the sequences in the packed rows: int32 [batch + 1], a host tensor or a plain Int32Array. */
export type SeqlenOffsets = HostTensor<'int32'> | Int32Array;

/** What both varlen calls take besides AttentionOptions. */
export interface VarlenSequences {
  /** int32 [batch + 1] (required): sequence b is rows cuSeqlensQ[b] … cuSeqlensQ[b + 1] − 1 of q
   * (and of out, dout, dq, lse's last dim); 0 first, non-decreasing, totalQ last. */
  cuSeqlensQ: SeqlenOffsets;
  /** int32 [batch + 1] (required): the same for the rows of k and v (and dk, dv), totalK last. */
  cuSeqlensK: SeqlenOffsets;
  /** The longest query sequence, as flash-attn takes it: optional here, and E_ARG when it is less
   * than the real longest. */
  maxSeqlenQ?: number;
  /** The longest key sequence (likewise). */
  maxSeqlenK?: number;
  /** Calls on one Stream run in issue order. */
  stream?: Stream;
}

/** Options of flashAttentionVarlen(). causal and windowSize are aligned to the bottom-right
 * corner of each sequence's own [seqlenQ_b, seqlenK_b] block. */
export interface VarlenOptions extends AttentionOptions, VarlenSequences {
  /** Written in place: [totalQ, headsQ, headDim], q's dtype (a DeviceTensor for DeviceTensor inputs). */
  out?: AnyTensor;
  /** Written in place: float32 [headsQ, totalQ] (contiguous when a DeviceTensor). */
  lse?: AnyTensor;
}

/** Options of flashAttentionVarlenBackward(). */
export interface VarlenBackwardOptions extends BackwardOptions, VarlenSequences {
  dq?: AnyTensor;
  dk?: AnyTensor;
  dv?: AnyTensor;
}

/** One varlen call: validates it, plans it like flashAttention (CPU backend, or CUDA for
 * DeviceTensors, device 'cuda', or 'auto' with a usable GPU), allocates the host outputs the caller
 * gave none for (`outputs`: each one's shape from the dims; lse is float32, the rest q's dtype; device
 * outputs are the addon's to allocate), and runs it. */
async function varlenCall(
  fn: string,
  op: 'forward' | 'backward',
  inputs: Record<string, unknown>,
  options: unknown,
  outputs: Record<string, (d: AttentionDims) => number[]>,
): Promise<Record<string, AnyTensor>> {
  const names = Object.keys(outputs);
  const core = coreOptions(fn, options, names, false);
  const { req, offsets } = normalizeVarlen(fn, op, inputs, core.rest);
  const p = plan(req, fn);
  const stream = streamFor(fn, core.stream, p);
  const dtypeOf = (n: string): DType => (n === 'lse' ? 'float32' : req.dtype);
  const given = names.map((n) => hostOutput(req, core.outputs[n], outputs[n](req.dims), dtypeOf(n)));
  const fields = [...req.tensors.map((t) => t.field), 'cuSeqlensQ', 'cuSeqlensK', ...names.filter((_, i) => given[i] !== undefined)];
  const tensors = [...req.tensors.map((t) => t.value), offsets.cuSeqlensQ.value, offsets.cuSeqlensK.value,
    ...given.filter((t) => t !== undefined)] as AnyTensor[];
  const max: Record<string, number> = {};
  if (offsets.maxSeqlenQ !== undefined) max.maxSeqlenQ = offsets.maxSeqlenQ;
  if (offsets.maxSeqlenK !== undefined) max.maxSeqlenK = offsets.maxSeqlenK;
  const res = await run<unknown>(fn, tensors, (args) => {
    const request: unknown = Object.assign(common(req, p, stream), max, Object.fromEntries(fields.map((f, i) => [f, args[i]])));
    if (op === 'forward') return native().varlenForward(request as NativeVarlenForwardRequest);
    return native().varlenBackward(Object.assign(request as object, { deterministic: req.deterministic }) as NativeVarlenBackwardRequest);
  }) as Record<string, NativeOutput>;
  const result: Record<string, AnyTensor> = {};
  try {
    names.forEach((n, i) => {
      result[n] = wrapOutput(fn, given[i], res[n], outputs[n](req.dims), dtypeOf(n));
    });
  } catch (e) {
    for (const t of Object.values(result)) if (t !== undefined && 'dispose' in t) (t as DeviceTensor).dispose();
    throw e;
  }
  return result;
}

/**
 * Exact attention over a batch of sequences of different lengths, packed without padding (flash-attn's
 * flash_attn_varlen_func). q: [totalQ, headsQ, headDim]; k, v: [totalK, headsKV, headDim]; sequence
 * b's queries are rows cuSeqlensQ[b] … cuSeqlensQ[b + 1] − 1 of q and attend only to its keys, rows
 * cuSeqlensK[b] … cuSeqlensK[b + 1] − 1 of k and v, with every mask as flashAttention() applies it to
 * that sequence alone. Returns out (like q) and lse (float32 [headsQ, totalQ]); a sequence with no
 * keys gives zeros and lse −Infinity, one with no queries nothing. Host tensors or DeviceTensors
 * (the offsets are always host int32: they plan one launch per sequence on CUDA).
 */
export async function flashAttentionVarlen<D extends DType>(
  q: DeviceTensor<D>,
  k: DeviceTensor<D>,
  v: DeviceTensor<D>,
  options: VarlenOptions,
): Promise<AttentionResult<DeviceTensor<D>, DeviceTensor<'float32'>>>;
export async function flashAttentionVarlen<D extends DType>(
  q: HostTensor<D>,
  k: HostTensor<D>,
  v: HostTensor<D>,
  options: VarlenOptions,
): Promise<AttentionResult<HostTensor<D>, HostTensor<'float32'>>>;
export async function flashAttentionVarlen(q: AnyTensor, k: AnyTensor, v: AnyTensor, options: VarlenOptions): Promise<AttentionResult>;
export async function flashAttentionVarlen(q: AnyTensor, k: AnyTensor, v: AnyTensor, options: VarlenOptions): Promise<AttentionResult> {
  const r = await varlenCall('flashAttentionVarlen', 'forward', { q, k, v }, options, {
    out: (d) => [d.seqlenQ, d.headsQ, d.headDim],
    lse: (d) => [d.headsQ, d.seqlenQ],
  });
  return { out: r.out, lse: r.lse };
}

/**
 * Gradients of flashAttentionVarlen(): given dout (like out) and the forward's out and lse
 * ([headsQ, totalQ]), returns dq (like q) and dk, dv (like k and v; summed over the query heads
 * that share a KV head), each sequence's from its own rows only.
 */
export async function flashAttentionVarlenBackward<D extends DType>(
  dout: DeviceTensor<D>, q: DeviceTensor<D>, k: DeviceTensor<D>, v: DeviceTensor<D>, out: DeviceTensor<D>, lse: DeviceTensor<'float32'>,
  options: VarlenBackwardOptions,
): Promise<AttentionGradients<DeviceTensor<D>>>;
export async function flashAttentionVarlenBackward<D extends DType>(
  dout: HostTensor<D>, q: HostTensor<D>, k: HostTensor<D>, v: HostTensor<D>, out: HostTensor<D>, lse: HostTensor<'float32'>,
  options: VarlenBackwardOptions,
): Promise<AttentionGradients<HostTensor<D>>>;
export async function flashAttentionVarlenBackward(
  dout: AnyTensor, q: AnyTensor, k: AnyTensor, v: AnyTensor, out: AnyTensor, lse: AnyTensor, options: VarlenBackwardOptions,
): Promise<AttentionGradients>;
export async function flashAttentionVarlenBackward(
  dout: AnyTensor, q: AnyTensor, k: AnyTensor, v: AnyTensor, out: AnyTensor, lse: AnyTensor, options: VarlenBackwardOptions,
): Promise<AttentionGradients> {
  const keys = (d: AttentionDims) => [d.seqlenK, d.headsKV, d.headDim];
  const r = await varlenCall('flashAttentionVarlenBackward', 'backward', { dout, q, k, v, out, lse }, options, {
    dq: (d) => [d.seqlenQ, d.headsQ, d.headDim],
    dk: keys,
    dv: keys,
  });
  return { dq: r.dq, dk: r.dk, dv: r.dv };
}
