// solar/core/progress.h — progress bars for people, JSON lines for machines.
//
// Progress draws "label [#####-----] 120/1000 12% | loss 3.21 | 5.2k tok/s |
// ETA 1m40s" on stderr. On a terminal it redraws one line with \r; in a log
// file (not a TTY) it prints a full line each time another `every_pct`
// percent is done, so CI logs stay short and readable.
// The rate and ETA count from the first update(), not from construction: the
// first step of a process carries one-time costs (oneDNN JIT-compiling its
// kernels, first-touch page faults), which dominated the rate a short resumed
// run showed (a tenth of the straight run's).
// MetricsLog appends one JSON object per line and flushes each, so a killed
// run leaves every finished line readable (`tail -f`, pandas.read_json(lines=True)).
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace solar {

class Progress {
 public:
  // total: steps expected (a resumed run needs no start: the rate and ETA
  // count from the first update()); unit: what the rate counts ("tok", "B").
  Progress(std::string label, int64_t total, std::string unit = "tok", FILE* out = stderr, int every_pct = 10);
  // done: steps finished so far (absolute); units: units processed since
  // start (for the rate); extra: free text such as "loss 3.21".
  void update(int64_t done, double units, const std::string& extra = "");
  void finish(double units = 0, const std::string& extra = "");  // final line + newline
  double elapsed_s() const;  // since construction
  // Tests: seconds since construction come from `clock` instead.
  void set_clock(std::function<double()> clock) { clock_ = std::move(clock); }
  bool tty() const { return tty_; }
  // "1.5k", "2.3M": short numbers for rates and counts.
  static std::string human(double v);
  static std::string duration(double seconds);  // "1h02m", "3m05s", "12s"

 private:
  std::string line(int64_t done, double units, const std::string& extra) const;
  std::string label_, unit_;
  int64_t total_;
  FILE* out_;
  bool tty_;
  int every_pct_, last_pct_ = -1;
  std::chrono::steady_clock::time_point t0_;
  std::function<double()> clock_;
  double last_draw_ = -1;
  // Time, steps and units at the first update: the rate's starting point.
  double first_t_ = -1, first_units_ = 0;
  int64_t first_done_ = 0;
};

class MetricsLog {
 public:
  // append=false truncates the file first.
  MetricsLog(const std::string& path, bool append);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void write(const nlohmann::json& obj);  // one line, flushed

 private:
  std::string path_;
  FILE* f_ = nullptr;
};

// Every complete JSON object line of a metrics file (a torn last line, as a
// kill -9 can leave, is skipped). Missing file: empty.
std::vector<nlohmann::json> read_metrics(const std::string& path);

}  // namespace solar
