// solar/serve/metrics.h — the counters and latency histograms GET /metrics
// reports in Prometheus' text format (names as llama.cpp's server, prefixed solar_).
// Threads: every method may be called from any thread.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace solar::serve {

class Histogram {
 public:
  // Upper bounds in seconds (Prometheus' "le"), +Inf implied.
  static constexpr std::array<double, 12> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  void observe(double s);
  // "# TYPE name histogram" and its _bucket/_sum/_count lines.
  std::string text(const std::string& name, const std::string& help) const;

 private:
  mutable std::mutex mu_;
  std::array<uint64_t, kBounds.size() + 1> counts_{};
  double sum_ = 0;
  uint64_t n_ = 0;
};

struct Metrics {
  std::atomic<uint64_t> requests{0}, requests_failed{0}, prompt_tokens{0}, generated_tokens{0}, cached_tokens{0};
  Histogram ttft, inter_token;
  // The whole page; queue depth and busy slots are read at the time of the scrape.
  std::string text(int queued, int busy, int n_slots) const;
};

}  // namespace solar::serve
