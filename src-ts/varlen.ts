// varlen.ts — flashAttentionVarlen() and flashAttentionVarlenBackward(): flash-attn's
// flash_attn_varlen_func for batches of sequences of different lengths packed along one token
// axis, with no padding. Reads the user's options (own properties only), allocates the host
// outputs, and hands one request to the addon, which checks every shape, dtype and offset value
// (native/varlen/varlen_request.cpp) and runs each sequence on the CPU backend.
import type { AttentionGradients, AttentionResult } from './api-types';
import { CPU_SELECTION, type Plan, common, coreOptions, hostOutput, run, streamFor } from './attention';
import { type DType } from './dtype';
import { native } from './probe';
import type { Stream } from './stream';
import type { HostTensor } from './tensor';
import type { NativeVarlenBackwardRequest, NativeVarlenForwardRequest } from './binding';
import {
  type AnyTensor,
  type AttentionDims,
  type AttentionOptions,
  type BackwardOptions,
  VARLEN_NOT_WIRED,
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
  /** Written in place: [totalQ, headsQ, headDim], q's dtype. */
  out?: HostTensor;
  /** Written in place: float32 [headsQ, totalQ]. */
  lse?: HostTensor<'float32'>;
}

/** Options of flashAttentionVarlenBackward(). */
export interface VarlenBackwardOptions extends BackwardOptions, VarlenSequences {
  dq?: HostTensor;
  dk?: HostTensor;
  dv?: HostTensor;
}

// Where every varlen call runs for now.
const CPU_PLAN: Plan = { backend: 'cpu', device: 0, selection: CPU_SELECTION, why: VARLEN_NOT_WIRED };

/** One varlen call: validates it, allocates the host outputs (`outputs`: each one's shape from the
 * dims; lse is float32, the rest q's dtype) the caller gave none for, and runs it. */
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
  const stream = streamFor(fn, core.stream, CPU_PLAN);
  const outs = names.map((n) => hostOutput(req, core.outputs[n], outputs[n](req.dims), n === 'lse' ? 'float32' : req.dtype) as AnyTensor);
  const fields = [...req.tensors.map((t) => t.field), 'cuSeqlensQ', 'cuSeqlensK', ...names];
  const tensors = [...req.tensors.map((t) => t.value), offsets.cuSeqlensQ.value, offsets.cuSeqlensK.value, ...outs] as AnyTensor[];
  const max: Record<string, number> = {};
  if (offsets.maxSeqlenQ !== undefined) max.maxSeqlenQ = offsets.maxSeqlenQ;
  if (offsets.maxSeqlenK !== undefined) max.maxSeqlenK = offsets.maxSeqlenK;
  await run<unknown>(fn, tensors, (args) => {
    const request = { ...common(req, CPU_PLAN, stream), ...max, ...Object.fromEntries(fields.map((f, i) => [f, args[i]])) };
    if (op === 'forward') return native().varlenForward(request as NativeVarlenForwardRequest);
    return native().varlenBackward({ ...request, deterministic: req.deterministic } as NativeVarlenBackwardRequest);
  });
  return Object.fromEntries(names.map((n, i) => [n, outs[i]]));
}

/**
 * Exact attention over a batch of sequences of different lengths, packed without padding (flash-attn's
 * flash_attn_varlen_func). q: [totalQ, headsQ, headDim]; k, v: [totalK, headsKV, headDim]; sequence
 * b's queries are rows cuSeqlensQ[b] … cuSeqlensQ[b + 1] − 1 of q and attend only to its keys, rows
 * cuSeqlensK[b] … cuSeqlensK[b + 1] − 1 of k and v, with every mask as flashAttention() applies it to
 * that sequence alone. Returns out (like q) and lse (float32 [headsQ, totalQ]); a sequence with no
 * keys gives zeros and lse −Infinity, one with no queries nothing. Host tensors, CPU backend.
 */
export async function flashAttentionVarlen<D extends DType>(
  q: HostTensor<D>,
  k: HostTensor<D>,
  v: HostTensor<D>,
  options: VarlenOptions,
): Promise<AttentionResult<HostTensor<D>, HostTensor<'float32'>>> {
  const r = await varlenCall('flashAttentionVarlen', 'forward', { q, k, v }, options, {
    out: (d) => [d.seqlenQ, d.headsQ, d.headDim],
    lse: (d) => [d.headsQ, d.seqlenQ],
  });
  return { out: r.out as HostTensor<D>, lse: r.lse as HostTensor<'float32'> };
}

/**
 * Gradients of flashAttentionVarlen(): given dout (like out) and the forward's out and lse
 * ([headsQ, totalQ]), returns dq (like q) and dk, dv (like k and v; summed over the query heads
 * that share a KV head), each sequence's from its own rows only.
 */
export async function flashAttentionVarlenBackward<D extends DType>(
  dout: HostTensor<D>, q: HostTensor<D>, k: HostTensor<D>, v: HostTensor<D>, out: HostTensor<D>, lse: HostTensor<'float32'>,
  options: VarlenBackwardOptions,
): Promise<AttentionGradients<HostTensor<D>>> {
  const keys = (d: AttentionDims) => [d.seqlenK, d.headsKV, d.headDim];
  const r = await varlenCall('flashAttentionVarlenBackward', 'backward', { dout, q, k, v, out, lse }, options, {
    dq: (d) => [d.seqlenQ, d.headsQ, d.headDim],
    dk: keys,
    dv: keys,
  });
  return { dq: r.dq as HostTensor<D>, dk: r.dk as HostTensor<D>, dv: r.dv as HostTensor<D> };
}
