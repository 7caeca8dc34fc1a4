// errors.ts — FlashAttentionError: one error class with a stable `code`, for every failure the
// package reports. Native errors arrive as plain Errors with a `code` property; rewrap() turns them
// into FlashAttentionErrors that keep the code and add what to do about it.

/** Stable error codes. Match on `err.code`, never on the message. */
export type ErrorCode =
  | 'E_ARG' // an option has a bad value (scale, window, causal, device, threads, ...)
  | 'E_SHAPE' // tensor shapes are wrong or do not agree with each other
  | 'E_DTYPE' // wrong dtype, or a typed array that does not match the dtype
  | 'E_UNSUPPORTED' // valid request, but no kernel/backend here can run it
  | 'E_NO_DEVICE' // a CUDA device was asked for and none is usable
  | 'E_CUDA' // a CUDA call failed
  | 'E_OOM' // out of (device) memory
  | 'E_DISPOSED' // a DeviceTensor was used after dispose()
  | 'E_INTERNAL'; // a bug, or an addon that failed to load

/** Every code, in one list (for validation and tests). */
export const ERROR_CODES: ReadonlyArray<ErrorCode> = [
  'E_ARG',
  'E_SHAPE',
  'E_DTYPE',
  'E_UNSUPPORTED',
  'E_NO_DEVICE',
  'E_CUDA',
  'E_OOM',
  'E_DISPOSED',
  'E_INTERNAL',
];

export class FlashAttentionError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FlashAttentionError';
    this.code = code;
  }
}

/** True when `value` is a FlashAttentionError (optionally with the given code). */
export function isFlashAttentionError(value: unknown, code?: ErrorCode): value is FlashAttentionError {
  return value instanceof FlashAttentionError && (code === undefined || value.code === code);
}

// What to do, per code, appended to native messages that do not already say it.
const HINTS: Partial<Record<ErrorCode, string>> = {
  E_OOM: 'Free device memory (dispose DeviceTensors you no longer need) or use a smaller batch / sequence length.',
  E_CUDA: 'Check the GPU with `npx flashattn inspect`; set FLASHATTN_DEBUG=1 for details.',
  E_NO_DEVICE: 'Run `npx flashattn inspect` to see what the addon found, or use device: \'cpu\'.',
  E_INTERNAL: 'This is a bug in flashattn; please report it with the message above.',
};

/**
 * Turns anything thrown by the addon (an Error with a `code` property) into a FlashAttentionError
 * with the same code. `context` names the operation, e.g. 'flashAttention'.
 * @internal
 */
export function rewrap(err: unknown, context: string): FlashAttentionError {
  if (err instanceof FlashAttentionError) return err;
  const raw = err as { code?: unknown; message?: unknown } | null | undefined;
  const nativeCode = typeof raw?.code === 'string' ? raw.code : undefined;
  const code: ErrorCode =
    nativeCode !== undefined && (ERROR_CODES as readonly string[]).includes(nativeCode)
      ? (nativeCode as ErrorCode)
      : 'E_INTERNAL';
  let message = typeof raw?.message === 'string' ? raw.message : String(err);
  if (!message.startsWith(context)) message = `${context}: ${message}`;
  const hint = HINTS[code];
  if (hint && !message.includes(hint)) message += `\n${hint}`;
  return new FlashAttentionError(code, message, { cause: err });
}

/** Shorthand for throwing: `fail('E_ARG', 'softmaxScale must be ...')`. @internal */
export function fail(code: ErrorCode, message: string): never {
  throw new FlashAttentionError(code, message);
}

/** A short description of a value for "expected X, got Y" messages. @internal */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) {
    const items = value.slice(0, 6).map((v) => describeValue(v));
    return `[${items.join(', ')}${value.length > 6 ? ', …' : ''}]`;
  }
  if (ArrayBuffer.isView(value)) {
    return `${value.constructor.name}(${(value as unknown as { length?: number }).length ?? value.byteLength})`;
  }
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    return name && name !== 'Object' ? `a ${name}` : 'an object';
  }
  return typeof value;
}
