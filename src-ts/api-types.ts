// api-types.ts — the generic public types: how a dtype flows from the typed array a tensor is made
// of to the results of the attention functions, so TypeScript can reject a wrong array at compile
// time. Type declarations only; nothing here exists at run time.
//
// The shipped .d.ts files must compile for consumers with `types: []` and without the
// esnext.disposable lib, so nothing here (or in any exported declaration) names a Node.js type,
// and the one global this package relies on, Symbol.dispose, is declared below the way
// lib.esnext.disposable and @types/node declare it (declarations of it merge with theirs).
import type { DType } from './dtype';
import type { AnyTensor } from './validate';

declare global {
  interface SymbolConstructor {
    /** The method `using` calls at the end of a block (DeviceTensor has one). */
    readonly dispose: unique symbol;
  }
}

/** A Float16Array, where the runtime has one (Node.js >= 24), typed without needing the lib that
 * declares it. */
export interface Float16ArrayLike extends ArrayBufferView {
  readonly [Symbol.toStringTag]: 'Float16Array';
  readonly length: number;
}

/** The dtypes that are 16-bit floats (host data: a Uint16Array of bits). */
export type Float16DType = 'float16' | 'bfloat16';

/** The dtype of flashAttention's `out` for inputs of dtype D (float8_e4m3 gives bfloat16). */
export type OutDType<D extends DType> = D extends 'float8_e4m3' ? 'bfloat16' : D;

/** Result of flashAttention(): `out` like q (bf16 for float8_e4m3 input); `lse` float32
 * [batch, headsQ, seqlenQ], of the same kind (host or device) as `out`. */
export interface AttentionResult<Out extends AnyTensor = AnyTensor, Lse extends AnyTensor = Out> {
  out: Out;
  lse: Lse;
}

/** Result of flashAttentionBackward(): gradients shaped (and typed) like q, k and v. */
export interface AttentionGradients<T extends AnyTensor = AnyTensor> {
  dq: T;
  dk: T;
  dv: T;
}
