// index.ts — the public API of flashattn.
export { flashAttention, flashAttentionBackward } from './attention';
export type {
  AttentionGradients,
  AttentionResult,
  BackwardCallOptions,
  ExecutionOptions,
  ForwardCallOptions,
} from './attention';
export { DeviceTensor } from './device-tensor';
export { Stream } from './stream';
export {
  bfloat16Bits,
  bfloat16Value,
  float16Bits,
  float16Value,
  fromBfloat16,
  fromFloat16,
  fromFloat32,
  toBfloat16,
  toFloat16,
  toFloat32,
} from './dtype';
export type { DType, HostArray } from './dtype';
export { ERROR_CODES, FlashAttentionError, isFlashAttentionError } from './errors';
export type { ErrorCode } from './errors';
export { probe } from './probe';
export type { DeviceReport, ProbeReport } from './probe';
export { tensor } from './tensor';
export type { HostTensor, TensorData } from './tensor';
export type { AnyTensor, AttentionDims, AttentionOptions, BackwardOptions } from './validate';

/** @internal Internals for the CLI and tests; not part of the stable API. */
export { planAttention } from './attention';
