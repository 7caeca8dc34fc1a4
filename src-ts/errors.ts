// errors.ts — FlashAttentionError: one error class with a stable `code`, for every failure the
// package reports. Native errors arrive as plain Errors with a `code` property; rewrap() turns them
// into FlashAttentionErrors that keep the code and add what to do about it.
import { types } from 'util';

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
  // The addon names its op ("forward: ..."); the context names the same call in the user's terms.
  message = message.replace(/^(forward|backward|naive_forward|varlen_forward|varlen_backward): /, '');
  if (!message.startsWith(context)) message = `${context}: ${message}`;
  const hint = HINTS[code];
  if (hint && !message.includes(hint)) message += `\n${hint}`;
  return new FlashAttentionError(code, message, { cause: err });
}

/** Shorthand for throwing: `fail('E_ARG', 'softmaxScale must be ...')`. @internal */
export function fail(code: ErrorCode, message: string): never {
  throw new FlashAttentionError(code, message);
}

/** The message of something thrown, for "reading x threw: ..." messages. @internal */
export function thrownText(e: unknown): string {
  try {
    if (e instanceof Error) return `${e.name}: ${e.message}`;
    return describeValue(e);
  } catch {
    return 'an unprintable value';
  }
}

const typedArrayTag = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag)
  ?.get as ((this: unknown) => unknown) | undefined;
const typedArrayLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), 'length')
  ?.get as ((this: unknown) => unknown) | undefined;

/**
 * A short description of a value for "expected X, got Y" messages. Never throws and never runs
 * user code (no getters, no Proxy traps, no toString). @internal
 */
export function describeValue(value: unknown): string {
  try {
    return describe(value, 0);
  } catch {
    return 'an object';
  }
}

function describe(value: unknown, depth: number): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'bigint') return `${value}n (a bigint)`;
  if (typeof value === 'symbol') return 'a symbol';
  if (types.isProxy(value)) return 'a Proxy';
  if (typeof value === 'function') return 'a function';
  if (typeof value !== 'object') return typeof value;
  const tag = typedArrayTag?.call(value);
  if (typeof tag === 'string') {
    const length = typedArrayLength?.call(value) as number;
    return `${tag}(${length})`;
  }
  if (Array.isArray(value)) {
    if (depth > 0) return 'an array';
    const length = Object.getOwnPropertyDescriptor(value, 'length')?.value as number;
    const items: string[] = [];
    for (let i = 0; i < Math.min(length, 6); i++) {
      const d = Object.getOwnPropertyDescriptor(value, String(i));
      items.push(d === undefined ? '<empty>' : 'value' in d ? describe(d.value, depth + 1) : 'a getter');
    }
    return `[${items.join(', ')}${length > 6 ? ', …' : ''}]`;
  }
  let proto: unknown = Object.getPrototypeOf(value);
  let name: unknown;
  while (proto !== null && typeof proto === 'object' && name === undefined) {
    const ctor = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value as unknown;
    const n = typeof ctor === 'function' ? Object.getOwnPropertyDescriptor(ctor, 'name')?.value : undefined;
    if (typeof n === 'string') name = n;
    else proto = Object.getPrototypeOf(proto);
  }
  return typeof name === 'string' && name !== 'Object' && name !== '' ? `a ${name}` : 'an object';
}
