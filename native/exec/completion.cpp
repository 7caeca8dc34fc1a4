// completion.cpp — see completion.h.
#include "exec/completion.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#if FLASHATTN_WITH_CUDA
#include "api.h"
#endif

namespace flashattn::native {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

#if FLASHATTN_WITH_CUDA

namespace {

struct Pending {
  Work* work;
  int device;
  void* event;
  const void* stream;
};

struct Watcher {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Pending> incoming;
};

// How long the thread spins after the last completion before it starts to sleep between polls.
constexpr auto kSpin = std::chrono::milliseconds(5);
constexpr auto kPollSleep = std::chrono::microseconds(20);
// How long the thread, holding nothing, keeps polling for new work after the last completion
// before it sleeps on the condition variable: a caller that awaits each call issues the next one
// microseconds after the last settled, and then finds the thread awake (no futex wake on the JS
// thread, no wake-up latency before its completion is seen).
constexpr auto kIdleSpin = std::chrono::milliseconds(2);

void run(Watcher* w) {
  std::vector<Pending> pending;
  std::vector<const void*> blocked;
  auto last = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(w->mu);
      const bool idle = pending.empty();
      if (idle && w->incoming.empty()) {
        if (std::chrono::steady_clock::now() - last < kIdleSpin) {
          lock.unlock();
          std::this_thread::yield();
          continue;
        }
        w->cv.wait(lock, [w] { return !w->incoming.empty(); });
      }
      if (idle) last = std::chrono::steady_clock::now();
      while (!w->incoming.empty()) {
        pending.push_back(w->incoming.front());
        w->incoming.pop_front();
      }
    }
    blocked.clear();
    bool any = false;
    for (size_t i = 0; i < pending.size();) {
      const Pending& p = pending[i];
      bool later = false;  // an earlier call on this stream has not completed: keep the order
      for (const void* s : blocked) later = later || s == p.stream;
      if (later) {
        ++i;
        continue;
      }
      std::string why;
      const int state = cuda::event_query(p.event, &why);
      if (state == 0) {
        blocked.push_back(p.stream);
        ++i;
        continue;
      }
      if (state < 0) p.work->gpu_failure = why;
      p.work->t_done_ns = now_ns();
      cuda::event_release(p.device, p.event);
      EnvState::deliver(p.work);
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));
      any = true;
    }
    const auto now = std::chrono::steady_clock::now();
    if (any) {
      last = now;
    } else if (!pending.empty()) {
      if (now - last < kSpin) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(kPollSleep);
      }
    }
  }
}

Watcher& watcher() {
  static Watcher* w = [] {
    auto* created = new Watcher();  // never destroyed, like its thread
    std::thread(run, created).detach();
    return created;
  }();
  return *w;
}

}  // namespace

void watch(Work* work, int device, void* event, const void* stream) {
  Watcher& w = watcher();
  {
    std::lock_guard<std::mutex> lock(w.mu);
    w.incoming.push_back(Pending{work, device, event, stream});
  }
  w.cv.notify_one();
}

#else

void watch(Work* work, int, void*, const void*) { EnvState::deliver(work); }

#endif

}  // namespace flashattn::native
