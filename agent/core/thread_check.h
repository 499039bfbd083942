// ThreadChecker: "this object is used from one thread" as a checked assumption. The first
// call binds it to the calling thread; later calls from another thread fail the assertion
// in debug builds. MESHOS_DCHECK_THREAD(checker) compiles to nothing with NDEBUG, so
// release builds pay nothing. Used at the entry points that must run on the loop thread
// (the Node, the gossip core): the shells own the threads, the cores only assume.
#pragma once

#include <atomic>
#include <cassert>
#include <thread>

namespace meshos {

class ThreadChecker {
 public:
  bool calledOnValidThread() const {
    const std::thread::id self = std::this_thread::get_id();
    std::thread::id expected{};
    if (owner_.compare_exchange_strong(expected, self)) return true;  // first use binds
    return expected == self;
  }
  // Forgets the thread (an object handed to another thread before its first use there).
  void detach() { owner_.store(std::thread::id{}); }

 private:
  mutable std::atomic<std::thread::id> owner_{};
};

}  // namespace meshos

#ifdef NDEBUG
#define MESHOS_DCHECK_THREAD(checker) ((void)0)
#else
#define MESHOS_DCHECK_THREAD(checker) assert((checker).calledOnValidThread() && "called off its owning thread")
#endif
