// index.ts — the public API of flashattn.
export { flashAttention, flashAttentionBackward } from './attention';
export type { AttentionGradients, AttentionResult, Float16ArrayLike, Float16DType, OutDType } from './api-types';
export type { BackwardCallOptions, ExecutionOptions, ForwardCallOptions, Layout } from './attention';
export { DeviceTensor } from './device-tensor';
export { flashAttentionWithKVCache } from './kvcache';
export type { Int32Input, KVCacheOptions } from './kvcache';
export { flashAttentionVarlen, flashAttentionVarlenBackward } from './varlen';
export type { SeqlenOffsets, VarlenBackwardOptions, VarlenOptions, VarlenSequences } from './varlen';
export { Stream } from './stream';
export {
  bfloat16Bits,
  bfloat16Value,
  float16Bits,
  float16Value,
  float8E4M3Bits,
  float8E4M3Value,
  fromBfloat16,
  fromFloat16,
  fromFloat32,
  fromFloat8E4M3,
  toBfloat16,
  toFloat16,
  toFloat32,
  toFloat8E4M3,
} from './dtype';
export { FLOAT8_E4M3_MAX, quantizeFp8 } from './fp8';
export type { QuantizeFp8Options, QuantizedFp8 } from './fp8';
export type { ArrayFor, DType, HostArray } from './dtype';
export { ERROR_CODES, FlashAttentionError, isFlashAttentionError } from './errors';
export type { ErrorCode } from './errors';
export { probe } from './probe';
export type { DeviceReport, ProbeReport } from './probe';
export { tensor } from './tensor';
export type { HostTensor, TensorData } from './tensor';
export type { AnyTensor, AttentionDims, AttentionOptions, BackwardOptions, DescaleInput, Fp8Options } from './validate';
