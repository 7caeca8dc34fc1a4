// spin.ts — keeps the event loop turning while GPU calls are in flight, so their promises settle
// microseconds after the GPU finishes instead of after the JS thread is woken from its sleep.
//
// When a call starts, a setImmediate chain polls the addon (binding().poll(true)), which settles
// every call that has completed. While the chain runs, the event loop never blocks in its poll
// phase (I/O and timers still run every turn), and the addon's completion thread does not wake
// it. The chain stops when no GPU call is in flight, or when nothing has started or settled for
// the spin window (FLASHATTN_SPIN_US microseconds, default 1000; 0 turns polling off); from then
// on completions wake the loop through the addon's thread-safe function, as they always can.
// The cost is one busy JS thread while calls are in flight within the window.
import { performance } from 'node:perf_hooks';

import { binding } from './binding';

/** The spin window in ms, from FLASHATTN_SPIN_US (read once). */
function windowMs(): number {
  const raw = process.env.FLASHATTN_SPIN_US;
  if (raw === undefined || raw.trim() === '') return 1;
  const us = Number(raw);
  return Number.isFinite(us) && us > 0 ? us / 1000 : 0;
}

const WINDOW_MS = windowMs();
let active = false;
let lastActivity = 0;
let lastInFlight = 0;

function tick(): void {
  const b = binding();
  const inFlight = b.poll(true);
  const now = performance.now();
  if (inFlight !== lastInFlight) lastActivity = now; // a call settled (or started) since the last turn
  lastInFlight = inFlight;
  if (inFlight > 0 && now - lastActivity < WINDOW_MS) {
    setImmediate(tick);
    return;
  }
  active = false;
  b.poll(false);
}

/** `pending`, a call the addon has just started: polls for its completion (and any other) for a
 * while. The call is already enqueued; this only changes how its settle is noticed. @internal */
export function polled<T>(pending: Promise<T>): Promise<T> {
  if (WINDOW_MS === 0) return pending;
  lastActivity = performance.now();
  if (!active) {
    active = true;
    lastInFlight = -1;
    setImmediate(tick);
  }
  return pending;
}
