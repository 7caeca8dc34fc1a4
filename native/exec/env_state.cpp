// env_state.cpp — see env_state.h.
#include "exec/env_state.h"

#include <atomic>
#include <vector>

#include "exec/completion.h"
#include "exec/stream.h"

namespace flashattn::native {

namespace {

struct Orphans {
  std::mutex mu;
  std::vector<Work*> items;
  std::atomic<size_t> count{0};
};

Orphans& orphans() {
  static auto* o = new Orphans();  // never destroyed: driver threads may push until process exit
  return *o;
}

void clear_pending_exception(napi_env env) noexcept {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    (void)napi_get_and_clear_last_exception(env, &ignored);
  }
}

}  // namespace

void Work::drop_refs(napi_env env) noexcept {
  for (napi_ref r : refs) (void)napi_delete_reference(env, r);
  refs.clear();
}

EnvState::EnvState(napi_env env) : env_(env), shared_(std::make_shared<EnvShared>()) {}

EnvState* EnvState::of(napi_env env) {
  void* data = nullptr;
  if (napi_get_instance_data(env, &data) != napi_ok || data == nullptr) {
    fail(ErrorCode::kInternal, "the addon's environment state is missing");
  }
  return static_cast<EnvState*>(data);
}

napi_status EnvState::init(napi_env env) {
  auto* state = new EnvState(env);
  napi_value name;
  napi_status s = napi_create_string_utf8(env, "flashattn completion", NAPI_AUTO_LENGTH, &name);
  if (s == napi_ok) {
    s = napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, state, &EnvState::call_js,
                                        &state->shared_->tsfn);
  }
  if (s == napi_ok) s = napi_unref_threadsafe_function(env, state->shared_->tsfn);  // ref'd only while work is in flight
  if (s == napi_ok) {
    s = napi_set_instance_data(
        env, state, [](napi_env, void* data, void*) { delete static_cast<EnvState*>(data); }, nullptr);
  }
  // Added after the thread-safe function, so it runs before the function's own teardown.
  if (s == napi_ok) s = napi_add_env_cleanup_hook(env, &EnvState::cleanup, state);
  return s;
}

void EnvState::begin(Work* work) {
  if (work->on_gpu) ++gpu_in_flight_;
  if (in_flight_++ == 0) (void)napi_ref_threadsafe_function(env_, shared_->tsfn);
}

void EnvState::finish(Work* work) noexcept {
  if (work->on_gpu) --gpu_in_flight_;
  napi_handle_scope scope = nullptr;
  if (napi_open_handle_scope(env_, &scope) != napi_ok) {
    discard(work);
  } else {
    try {
      work->settle(env_);
    } catch (...) {
      clear_pending_exception(env_);
      reject(env_, work->deferred, current_failure(work->op));
    }
    clear_pending_exception(env_);
    work->drop_refs(env_);
    discard(work);
    (void)napi_close_handle_scope(env_, scope);
  }
  if (--in_flight_ == 0) (void)napi_unref_threadsafe_function(env_, shared_->tsfn);
}

void EnvState::discard(Work* work) noexcept {
  try {
    delete work;
  } catch (...) {
  }
}

void EnvState::used_stream(const std::shared_ptr<StreamCore>& stream) {
  std::lock_guard<std::mutex> lock(streams_mu_);
  for (auto it = streams_.begin(); it != streams_.end();) {
    const std::shared_ptr<StreamCore> s = it->lock();
    if (s == stream) return;
    it = s ? it + 1 : streams_.erase(it);  // forget disposed streams
  }
  streams_.push_back(stream);
}

// How long a poll(true) lets completions go undelivered to the event loop: the JS thread polls
// again well within it while it keeps polling, and a delivery after it wakes the loop.
constexpr int64_t kPollLeaseNs = 300'000;

void EnvState::deliver(void* data) noexcept {
  Work* work = static_cast<Work*>(data);
  try {
    std::shared_ptr<EnvShared> shared = work->shared;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      if (shared->alive) {
        // A wake is needed only when the list was empty (else one is on its way, or the JS thread
        // polls) and the JS thread is not polling.
        const bool wake = shared->ready.empty() && now_ns() > shared->polled_until_ns;
        shared->ready.push_back(work);
        if (wake) (void)napi_call_threadsafe_function(shared->tsfn, nullptr, napi_tsfn_nonblocking);
        return;
      }
    }
    Orphans& o = orphans();
    std::lock_guard<std::mutex> lock(o.mu);
    o.items.push_back(work);
    o.count.fetch_add(1, std::memory_order_relaxed);
  } catch (...) {
    // Out of memory while keeping it: the Work leaks rather than being freed on a driver thread.
  }
}

void EnvState::settle_ready() noexcept {
  std::vector<Work*> items;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    items.swap(shared_->ready);
  }
  for (Work* w : items) finish(w);
}

int64_t EnvState::poll(bool poll_more) noexcept {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->polled_until_ns = poll_more ? now_ns() + kPollLeaseNs : 0;
  }
  settle_ready();
  return gpu_in_flight_;
}

void EnvState::free_orphans() noexcept {
  Orphans& o = orphans();
  if (o.count.load(std::memory_order_relaxed) == 0) return;
  std::vector<Work*> items;
  {
    std::lock_guard<std::mutex> lock(o.mu);
    items.swap(o.items);
    o.count.store(0, std::memory_order_relaxed);
  }
  for (Work* w : items) discard(w);
}

void EnvState::call_js(napi_env env, napi_value /*js_cb*/, void* context, void* /*data*/) noexcept {
  auto* state = static_cast<EnvState*>(context);
  if (env == nullptr) return;  // the thread-safe function is being torn down: cleanup() frees the list
  bool alive = false;
  {
    std::lock_guard<std::mutex> lock(state->shared_->mu);
    alive = state->shared_->alive;
  }
  if (alive) state->settle_ready();
}

void EnvState::cleanup(void* data) noexcept {
  auto* state = static_cast<EnvState*>(data);
  {
    std::lock_guard<std::mutex> lock(state->shared_->mu);
    state->shared_->alive = false;
  }
  // Every host function behind this environment's work runs before these waits return; what it
  // could not deliver is then freed here.
  std::vector<std::shared_ptr<StreamCore>> streams;
  {
    std::lock_guard<std::mutex> lock(state->streams_mu_);
    for (const auto& w : state->streams_) {
      if (auto s = w.lock()) streams.push_back(s);
    }
  }
  for (const auto& s : streams) wait_stream_quietly(s->cuda_if_created());
  std::vector<Work*> undelivered;
  {
    std::lock_guard<std::mutex> lock(state->shared_->mu);
    undelivered.swap(state->shared_->ready);
  }
  for (Work* w : undelivered) discard(w);
  free_orphans();
}

napi_value new_promise(napi_env env, Work* work) {
  napi_value promise = nullptr;
  if (napi_create_promise(env, &work->deferred, &promise) != napi_ok) {
    fail(ErrorCode::kInternal, "napi_create_promise failed");
  }
  return promise;
}

napi_value js_error(napi_env env, const Failure& f) noexcept {
  try {
    const std::string text = f.message.empty() ? std::string("flashattn: unknown error") : f.message;
    napi_value msg = nullptr, code = nullptr, err = nullptr;
    if (napi_create_string_utf8(env, text.c_str(), text.size(), &msg) != napi_ok) return nullptr;
    if (napi_create_error(env, nullptr, msg, &err) != napi_ok) return nullptr;
    if (napi_create_string_utf8(env, error_code_name(f.code), NAPI_AUTO_LENGTH, &code) == napi_ok) {
      (void)napi_set_named_property(env, err, "code", code);
    }
    return err;
  } catch (...) {
    return nullptr;
  }
}

void reject(napi_env env, napi_deferred deferred, const Failure& f) noexcept {
  if (deferred == nullptr) return;
  napi_value err = js_error(env, f);
  if (err == nullptr) (void)napi_get_undefined(env, &err);
  (void)napi_reject_deferred(env, deferred, err);
}

}  // namespace flashattn::native
