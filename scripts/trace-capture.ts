// trace-capture.ts — collects the addon's per-call trace (FLASHATTN_TRACE: host milestones; =gpu
// also the kernel's GPU time and the GPU's idle time before it) from every call the public API
// makes, by wrapping the binding's call functions. For the diagnostic scripts only.
import { binding } from '../src-ts/binding';

export type Trace = Record<string, number>;

const CALLS = ['forwardFlat', 'forward', 'backward', 'varlenForward', 'varlenBackward', 'kvcache'];

/** Wraps the binding's call functions once; every trace they return is pushed onto the array
 * this returns (empty it to start a new count). */
export function captureTraces(): Trace[] {
  const traces: Trace[] = [];
  const b = binding() as unknown as Record<string, (...args: unknown[]) => Promise<{ trace?: Trace }>>;
  for (const name of CALLS) {
    const orig = b[name];
    if (typeof orig !== 'function') continue;
    b[name] = function (this: unknown, ...args: unknown[]) {
      return orig.apply(this, args).then((r) => {
        if (r && r.trace) traces.push(r.trace);
        return r;
      });
    };
  }
  return traces;
}
