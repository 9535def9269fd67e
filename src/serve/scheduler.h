// solar/serve/scheduler.h — continuous batching over a fixed set of slots.
//
// A Scheduler owns n slots (each an engine::Context with its own KV cache)
// and one thread that advances every active slot together: each step is one
// Context::eval_batch over the next token of every decoding slot plus a chunk
// of at most `chunk` prompt tokens of slots still prefilling, so the weights
// are read once per step for all sequences and a long prompt never stalls the
// others for more than a chunk. A job submitted while others run joins at the
// next step; it takes the free slot whose cache shares the longest prefix
// with its prompt (a conversation's next turn re-evaluates only its new tail).
//
// Threads: submit(), cancel_all() and stats() from any thread; a Job's
// output is read by one consumer thread (wait_output) while the scheduler
// thread writes it; Job::cancel may be set from anywhere (a client that went
// away) and frees the slot at the next step.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/session.h"
#include "generate/generate.h"

namespace solar::serve {

using Clock = std::chrono::steady_clock;

struct Job {
  std::vector<int> prompt;
  generate::GenerateOptions opt;  // opt.cancel is ignored: set `cancel` instead
  std::atomic<bool> cancel{false};

  // Output, under mu: text pieces not yet taken, then done.
  std::mutex mu;
  std::condition_variable cv;
  std::string text;           // produced and not yet taken
  bool done = false;
  std::string finish_reason;  // "stop" or "length" (OpenAI's), "cancelled"; error: see `error`
  std::string error;          // set (and done) when the job failed
  int n_prompt = 0, n_cached = 0, n_generated = 0;
  Clock::time_point t_submit, t_first;
  // Takes the text produced so far (waits up to `wait` for some, or for done);
  // returns false once done and nothing is left.
  bool wait_output(std::string* out, std::chrono::milliseconds wait);
};

// What /metrics reports; the scheduler calls these as it runs.
struct SchedulerHooks {
  std::function<void(double seconds)> on_first_token;  // time to first token of a job
  std::function<void(double seconds)> on_token;        // time between a job's tokens
  std::function<void(int n_prompt, int n_generated)> on_job_done;
};

class Scheduler {
 public:
  // n_ctx per slot (0: the model's); chunk: prompt tokens per step at most.
  Scheduler(engine::Session lm, int n_slots, int n_ctx, int chunk, int threads, SchedulerHooks hooks = {});
  ~Scheduler();  // cancels everything, joins the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  int n_slots() const { return int(slots_.size()); }
  int n_ctx() const { return n_ctx_; }
  // Queues a job (prompt must be non-empty and shorter than n_ctx()).
  void submit(const std::shared_ptr<Job>& job);
  // Ends every queued and running job, and any submitted later, as
  // "cancelled" (shutdown).
  void cancel_all();
  struct Stats {
    int queued = 0, busy = 0;
  };
  Stats stats() const;

 private:
  struct Slot {
    engine::Context ctx;
    std::vector<int> cached;  // the tokens whose keys/values ctx holds
    std::shared_ptr<Job> job;
    std::unique_ptr<generate::Generation> gen;
    size_t fed = 0;    // prompt tokens in ctx so far
    int next = -1;     // the sampled token to run next (decoding)
    Clock::time_point t_last;
  };
  void loop();
  void assign(std::shared_ptr<Job> job);
  void finish(Slot& s, const std::string& reason, const std::string& error = "");
  void push_text(Slot& s, const std::string& text);

  engine::Session lm_;
  int n_ctx_, chunk_, threads_;
  SchedulerHooks hooks_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<float> logits_;  // [slots, vocab]: a step's logits, row b for the b-th item that has some
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::atomic<int> busy_{0};
  bool stop_ = false;
  std::atomic<bool> closing_{false};  // cancel_all() was called
  std::thread thread_;
};

}  // namespace solar::serve
