#include "serve/metrics.h"

#include <cstdio>

namespace solar::serve {

void Histogram::observe(double s) {
  std::lock_guard lk(mu_);
  size_t i = 0;
  while (i < kBounds.size() && s > kBounds[i]) ++i;
  ++counts_[i];
  sum_ += s;
  ++n_;
}

std::string Histogram::text(const std::string& name, const std::string& help) const {
  std::lock_guard lk(mu_);
  std::string out = "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cum = 0;
  char buf[160];
  for (size_t i = 0; i <= kBounds.size(); ++i) {
    cum += counts_[i];
    if (i < kBounds.size())
      std::snprintf(buf, sizeof buf, "%s_bucket{le=\"%g\"} %llu\n", name.c_str(), kBounds[i], (unsigned long long)cum);
    else
      std::snprintf(buf, sizeof buf, "%s_bucket{le=\"+Inf\"} %llu\n", name.c_str(), (unsigned long long)cum);
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "%s_sum %.6f\n%s_count %llu\n", name.c_str(), sum_, name.c_str(), (unsigned long long)n_);
  return out + buf;
}

static std::string metric(const char* name, const char* type, const char* help, double v) {
  char buf[300];
  std::snprintf(buf, sizeof buf, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
  return buf;
}

std::string Metrics::text(int queued, int busy, int n_slots) const {
  std::string out;
  out += metric("solar_requests_total", "counter", "Completion requests received.", double(requests));
  out += metric("solar_requests_failed_total", "counter", "Requests answered with an error.", double(requests_failed));
  out += metric("solar_prompt_tokens_total", "counter", "Prompt tokens of finished requests.", double(prompt_tokens));
  out += metric("solar_prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's KV cache.", double(cached_tokens));
  out += metric("solar_tokens_predicted_total", "counter", "Generated tokens.", double(generated_tokens));
  out += metric("solar_requests_deferred", "gauge", "Requests waiting for a free slot.", queued);
  out += metric("solar_requests_processing", "gauge", "Busy slots.", busy);
  out += metric("solar_slots", "gauge", "Slots (-np).", n_slots);
  out += ttft.text("solar_time_to_first_token_seconds", "Time from request to its first generated token.");
  out += inter_token.text("solar_inter_token_latency_seconds", "Time between a request's consecutive tokens.");
  return out;
}

}  // namespace solar::serve
