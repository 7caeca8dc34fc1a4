// completion.h — one addon thread that watches completion events and hands each finished Work
// back to its environment (EnvState::deliver).
//
// A CUDA call records an event behind its work and passes (work, event) here; nothing is put on
// the stream itself, so the GPU runs calls back to back with no host round trip between them
// (a host function, cudaLaunchHostFunc, would stall the stream until it returned). The thread
// polls the events it holds: spinning (with yields) while completions keep coming, backing off to
// short sleeps after a few idle milliseconds, and, holding none, polling for new work for 2 ms after
// the last completion before it sleeps on a condition variable. Calls on one stream are delivered in issue order. No libuv pool thread waits on the GPU.
#pragma once

#include <cstdint>

#include "exec/env_state.h"

namespace flashattn::native {

// Takes `work` until its event completes; `stream` keys the issue order. CUDA build only.
void watch(Work* work, int device, void* event, const void* stream);

// Steady-clock nanoseconds (for FLASHATTN_TRACE).
int64_t now_ns();

}  // namespace flashattn::native
