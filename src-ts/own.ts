// own.ts — reading what the user passed without trusting it: only own properties (an inherited
// `causal` or `data`, e.g. from a polluted Object.prototype, is never seen), each read once (a
// getter that changes between reads cannot pass one check and feed another), and a getter or
// Proxy trap that throws becomes a FlashAttentionError naming the field. Typed arrays are told
// apart by their internal slots, so arrays from another realm (vm, iframes) are accepted and
// look-alikes or Proxies are not.
import { FlashAttentionError, describeValue, thrownText } from './errors';

/**
 * Own property `key` of `obj`, read once; undefined when it is not an own property. A throwing
 * getter or Proxy trap becomes E_ARG naming `path`. @internal
 */
export function ownField(obj: object, key: string, path: string): unknown {
  // hasOwn, then one read of the own property (a getter runs once): no descriptor object is made.
  try {
    return Object.hasOwn(obj, key) ? (obj as Record<string, unknown>)[key] : undefined;
  } catch (e) {
    throw new FlashAttentionError('E_ARG', `reading ${path} threw: ${thrownText(e)}`, { cause: e });
  }
}

/** Own enumerable string keys of `obj` (a throwing Proxy trap becomes E_ARG). @internal */
export function ownKeys(obj: object, path: string): string[] {
  try {
    return Object.keys(obj);
  } catch (e) {
    throw new FlashAttentionError('E_ARG', `reading the keys of ${path} threw: ${thrownText(e)}`, { cause: e });
  }
}

/** Marks a hole of a sparse array in ownArray()'s result. @internal */
export const HOLE: unique symbol = Symbol('hole');

/**
 * A plain copy of a user array: its length and own elements, each read once; holes become HOLE
 * (never an inherited Array.prototype element). @internal
 */
export function ownArray(value: readonly unknown[], path: string): unknown[] {
  const length = ownField(value, 'length', `${path}.length`);
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0 || length > 1 << 20) {
    throw new FlashAttentionError('E_ARG', `${path} has an unusable length: ${describeValue(length)}`);
  }
  const out: unknown[] = [];
  let i = 0;
  try {
    // As ownField, element by element; the path of an element is only built for a message.
    for (; i < length; i++) out.push(Object.hasOwn(value, i) ? value[i] : HOLE);
  } catch (e) {
    throw new FlashAttentionError('E_ARG', `reading ${path}[${i}] threw: ${thrownText(e)}`, { cause: e });
  }
  return out;
}

// %TypedArray%.prototype's getters check the internal slots, whatever realm the array comes from,
// and ignore own properties that shadow them.
const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
function intrinsicGetter(name: PropertyKey): (this: unknown) => unknown {
  const get = Object.getOwnPropertyDescriptor(typedArrayProto, name)?.get;
  if (get === undefined) throw new Error(`flashattn: %TypedArray%.prototype has no ${String(name)} getter`);
  return get as (this: unknown) => unknown;
}
const tagOf = intrinsicGetter(Symbol.toStringTag);
const lengthOf = intrinsicGetter('length');
const bufferOf = intrinsicGetter('buffer');
const byteOffsetOf = intrinsicGetter('byteOffset');
const detachedGetter = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'detached')?.get;

/** 'Float32Array', 'Uint16Array', ... for a real typed array of any realm; undefined otherwise. @internal */
export function typedArrayName(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const tag = tagOf.call(value); // never throws: undefined for anything without the slots
  return typeof tag === 'string' ? tag : undefined;
}

/** Element count of a typed array (0 when its buffer is detached). @internal */
export function typedArrayLength(value: object): number {
  return lengthOf.call(value) as number;
}

/** Byte offset of a typed array into its buffer. @internal */
export function typedArrayByteOffset(value: object): number {
  return byteOffsetOf.call(value) as number;
}

/** The typed array's ArrayBuffer or SharedArrayBuffer. @internal */
export function typedArrayBuffer(value: object): ArrayBufferLike {
  return bufferOf.call(value) as ArrayBufferLike;
}

/** True when the typed array's ArrayBuffer was detached (transferred, or structuredClone'd with transfer). @internal */
export function isDetached(value: object): boolean {
  const buffer = typedArrayBuffer(value);
  if (!(Object.prototype.toString.call(buffer) === '[object ArrayBuffer]')) return false; // SharedArrayBuffer
  if (detachedGetter !== undefined) return detachedGetter.call(buffer) === true;
  if (typedArrayLength(value) !== 0) return false;
  try {
    new Uint8Array(buffer as ArrayBuffer, 0, 0); // throws on a detached buffer
    return false;
  } catch {
    return true;
  }
}
