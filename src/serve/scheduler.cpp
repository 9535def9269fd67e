#include "serve/scheduler.h"

#include <algorithm>

#include "core/error.h"
#include "core/log.h"
#include "kernels/kernels.h"

namespace solar::serve {

bool Job::wait_output(std::string* out, std::chrono::milliseconds wait) {
  std::unique_lock lk(mu);
  cv.wait_for(lk, wait, [&] { return done || !text.empty(); });
  out->clear();
  out->swap(text);
  return !(done && out->empty());
}

Scheduler::Scheduler(engine::Session lm, int n_slots, int n_ctx, int chunk, int threads, SchedulerHooks hooks)
    : lm_(std::move(lm)), chunk_(std::max(1, chunk)), threads_(threads), hooks_(std::move(hooks)) {
  if (n_slots < 1) fail("-np/--parallel", "", "expected at least 1 slot, got " + std::to_string(n_slots));
  for (int i = 0; i < n_slots; ++i)
    slots_.push_back(std::make_unique<Slot>(Slot{lm_.new_context(n_ctx, "-c/--ctx-size"), {}, nullptr, nullptr, 0, -1, {}}));
  n_ctx_ = slots_[0]->ctx.n_ctx();
  logits_.resize(size_t(n_slots) * size_t(lm_.config().vocab_size));
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Scheduler::submit(const std::shared_ptr<Job>& job) {
  if (job->prompt.empty() || int(job->prompt.size()) >= n_ctx_)
    fail("serve: a prompt of " + std::to_string(job->prompt.size()) + " tokens for a context of " + std::to_string(n_ctx_));
  job->t_submit = Clock::now();
  job->n_prompt = int(job->prompt.size());
  if (closing_) job->cancel = true;
  {
    std::lock_guard lk(mu_);
    queue_.push_back(job);
  }
  cv_.notify_all();
}

void Scheduler::cancel_all() {
  // The slots belong to the scheduler thread: it sees closing_ at its next step.
  std::lock_guard lk(mu_);
  closing_ = true;
  for (auto& j : queue_) j->cancel = true;
  cv_.notify_all();
}

Scheduler::Stats Scheduler::stats() const {
  std::lock_guard lk(mu_);
  return {int(queue_.size()), busy_.load()};
}

void Scheduler::push_text(Slot& s, const std::string& text) {
  if (text.empty()) return;
  {
    std::lock_guard lk(s.job->mu);
    s.job->text += text;
  }
  s.job->cv.notify_all();
}

void Scheduler::finish(Slot& s, const std::string& reason, const std::string& error) {
  std::string tail;
  if (s.gen) s.gen->finish(reason, &tail);
  push_text(s, tail);
  const std::string why = s.gen ? s.gen->stop_reason() : reason;
  Job& j = *s.job;
  {
    std::lock_guard lk(j.mu);
    j.finish_reason = why == "eos" || why == "stop" ? "stop" : why == "cancelled" ? "cancelled" : "length";
    j.error = error;
    j.n_generated = s.gen ? int(s.gen->tokens().size()) : 0;
    j.done = true;
  }
  j.cv.notify_all();
  if (hooks_.on_job_done) hooks_.on_job_done(j.n_prompt, j.n_generated);
  // What the cache holds stays reusable by the next job with the same prefix.
  s.cached.resize(size_t(s.ctx.n_past()));
  s.job.reset();
  s.gen.reset();
  --busy_;
}

// The free slot whose cache shares the longest prefix with the prompt (the
// least recently cached one among equals is fine: any is).
void Scheduler::assign(std::shared_ptr<Job> job) {
  Slot* best = nullptr;
  size_t best_p = 0;
  for (auto& s : slots_) {
    if (s->job) continue;
    size_t p = 0;
    while (p < s->cached.size() && p < job->prompt.size() && s->cached[p] == job->prompt[p]) ++p;
    if (!best || p > best_p) best = s.get(), best_p = p;
  }
  if (best_p == job->prompt.size()) --best_p;  // the last prompt token must run for its logits
  Slot& s = *best;
  s.ctx.truncate(int(best_p));
  s.cached.resize(best_p);
  s.fed = best_p;
  s.job = std::move(job);
  s.job->n_cached = int(best_p);
  s.gen = std::make_unique<generate::Generation>(*lm_.tokenizer, s.job->prompt, s.job->opt);
  s.next = -1;
  ++busy_;
}

void Scheduler::loop() {
  kernels::set_num_threads(threads_);  // OpenMP's thread count is per calling thread
  std::vector<engine::BatchItem> items;
  std::vector<Slot*> in_batch;
  while (true) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty() || busy_ > 0; });
      if (stop_) break;
      while (!queue_.empty() && busy_ < int(slots_.size())) {
        auto j = std::move(queue_.front());
        queue_.pop_front();
        if (j->cancel) {
          std::lock_guard jl(j->mu);
          j->finish_reason = "cancelled";
          j->done = true;
          j->cv.notify_all();
          continue;
        }
        assign(std::move(j));
      }
    }
    items.clear();
    in_batch.clear();
    int budget = chunk_;  // prompt tokens this step
    const size_t V = size_t(lm_.config().vocab_size);
    float* next_logits = logits_.data();  // rows in batch order: eval_batch writes them in place
    for (auto& sp : slots_) {
      Slot& s = *sp;
      if (!s.job) continue;
      if (s.job->cancel || closing_) {
        finish(s, "cancelled");
        continue;
      }
      if (s.fed < s.job->prompt.size()) {
        if (budget <= 0) continue;
        const int n = std::min(budget, int(s.job->prompt.size() - s.fed));
        budget -= n;
        const bool last = s.fed + size_t(n) == s.job->prompt.size();
        items.push_back({&s.ctx, s.job->prompt.data() + s.fed, n, last ? next_logits : nullptr});
        if (last) next_logits += V;
      } else {
        items.push_back({&s.ctx, &s.next, 1, next_logits});
        next_logits += V;
      }
      in_batch.push_back(&s);
    }
    if (items.empty()) continue;
    try {
      engine::Context::eval_batch(items.data(), int(items.size()));
    } catch (const Error& e) {
      log_warn("serve", std::string("batch failed: ") + e.what());
      for (Slot* s : in_batch) finish(*s, "error", e.what());
      continue;
    }
    const auto now = Clock::now();
    std::vector<std::string> texts(in_batch.size()), errors(in_batch.size());
    std::vector<char> first(in_batch.size());
    for (size_t b = 0; b < in_batch.size(); ++b) {
      Slot& s = *in_batch[b];
      const engine::BatchItem& it = items[b];
      s.cached.insert(s.cached.end(), it.tokens, it.tokens + it.n);
      if (s.fed < s.job->prompt.size()) s.fed += size_t(it.n);
      first[b] = s.gen->tokens().empty();
    }
    // Sampling in parallel (16 argmaxes over 32K logits are a tenth of a
    // small model's step): each slot's Generation is its own, the tokenizer
    // immutable, and a slot's draws do not depend on the others'.
    kernels::parallel_for(int64_t(in_batch.size()), int64_t(in_batch.size() * V), [&](int64_t b) {
      if (!items[size_t(b)].logits) return;
      Slot& s = *in_batch[size_t(b)];
      try {
        s.next = s.gen->next(items[size_t(b)].logits, int(V), &texts[size_t(b)]);
      } catch (const std::exception& e) {  // nothing may leave an OpenMP region
        errors[size_t(b)] = e.what();
      }
    });
    for (size_t b = 0; b < in_batch.size(); ++b) {
      Slot& s = *in_batch[b];
      if (!items[b].logits) continue;
      if (!errors[b].empty()) {
        finish(s, "error", errors[b]);
        continue;
      }
      if (first[b] && hooks_.on_first_token) hooks_.on_first_token(std::chrono::duration<double>(now - s.job->t_submit).count());
      if (!first[b] && hooks_.on_token) hooks_.on_token(std::chrono::duration<double>(now - s.t_last).count());
      if (first[b]) s.job->t_first = now;
      s.t_last = now;
      push_text(s, texts[b]);
      if (s.next < 0)
        finish(s, "");
      else if (s.ctx.n_past() >= s.ctx.n_ctx())
        finish(s, "context");
    }
  }
  for (auto& s : slots_)
    if (s->job) finish(*s, "cancelled");
  std::lock_guard lk(mu_);
  for (auto& j : queue_) {
    std::lock_guard jl(j->mu);
    j->finish_reason = "cancelled";
    j->done = true;
    j->cv.notify_all();
  }
}

}  // namespace solar::serve
