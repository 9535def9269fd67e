#include "core/progress.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

#include "core/error.h"

namespace solar {

Progress::Progress(std::string label, int64_t total, std::string unit, FILE* out, int every_pct)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      out_(out),
      tty_(isatty(fileno(out))),
      every_pct_(every_pct > 0 ? every_pct : 10),
      t0_(std::chrono::steady_clock::now()) {}

double Progress::elapsed_s() const {
  return clock_ ? clock_() : std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

std::string Progress::human(double v) {
  const char* suffix[] = {"", "k", "M", "G", "T"};
  int i = 0;
  while (std::fabs(v) >= 1000 && i < 4) v /= 1000, i++;
  char b[32];
  std::snprintf(b, sizeof b, i == 0 ? "%.0f%s" : "%.1f%s", v, suffix[i]);
  return b;
}

std::string Progress::duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  int64_t t = int64_t(s + 0.5);
  char b[32];
  if (t >= 3600) std::snprintf(b, sizeof b, "%lldh%02lldm", (long long)(t / 3600), (long long)(t / 60 % 60));
  else if (t >= 60) std::snprintf(b, sizeof b, "%lldm%02llds", (long long)(t / 60), (long long)(t % 60));
  else std::snprintf(b, sizeof b, "%llds", (long long)t);
  return b;
}

std::string Progress::line(int64_t done, double units, const std::string& extra) const {
  double frac = total_ > 0 ? std::min(1.0, double(done) / double(total_)) : 1.0;
  const int width = 20;
  int filled = int(frac * width);
  std::string bar = std::string(filled, '#') + std::string(width - filled, '-');
  double el = elapsed_s();
  char b[160];
  std::snprintf(b, sizeof b, "%s [%s] %lld/%lld %3d%%", label_.c_str(), bar.c_str(), (long long)done,
                (long long)total_, int(frac * 100));
  std::string s = b;
  if (!extra.empty()) s += " | " + extra;
  // From the first update on (see the header); a run of one update ends with its average.
  bool measured = first_t_ >= 0 && done > first_done_ && el > first_t_;
  double dt = measured ? el - first_t_ : el, du = measured ? units - first_units_ : units;
  if ((measured || done >= total_) && dt > 0 && du > 0) s += " | " + human(du / dt) + " " + unit_ + "/s";
  if (done < total_)
    s += " | ETA " + (measured ? duration(dt / double(done - first_done_) * double(total_ - done)) : "?");
  else s += " | " + duration(el);
  return s;
}

void Progress::update(int64_t done, double units, const std::string& extra) {
  if (first_t_ < 0) first_t_ = elapsed_s(), first_units_ = units, first_done_ = done;
  if (tty_) {
    double el = elapsed_s();
    if (el - last_draw_ < 0.1 && done < total_) return;  // a redraw per step would flood slow terminals
    last_draw_ = el;
    std::fprintf(out_, "\r\033[K%s", line(done, units, extra).c_str());
  } else {
    int pct = total_ > 0 ? int(100 * done / total_) : 100;
    if (last_pct_ >= 0 && pct / every_pct_ == last_pct_ / every_pct_) return;
    last_pct_ = pct;
    std::fprintf(out_, "%s\n", line(done, units, extra).c_str());
  }
  std::fflush(out_);
}

void Progress::finish(double units, const std::string& extra) {
  if (!tty_ && last_pct_ >= 100) return;  // the 100% line is already out
  std::fprintf(out_, "%s%s\n", tty_ ? "\r\033[K" : "", line(total_, units, extra).c_str());
  std::fflush(out_);
}

MetricsLog::MetricsLog(const std::string& path, bool append) : path_(path) {
  f_ = std::fopen(path.c_str(), append ? "ab" : "wb");
  if (!f_) fail(path, "", std::string("cannot open for writing: ") + std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::write(const nlohmann::json& obj) {
  std::string s = obj.dump() + "\n";
  if (std::fwrite(s.data(), 1, s.size(), f_) != s.size() || std::fflush(f_) != 0)
    fail(path_, "", std::string("write failed (disk full?): ") + std::strerror(errno));
}

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string l;
  while (std::getline(in, l)) {
    auto j = nlohmann::json::parse(l, nullptr, false);
    if (!j.is_discarded() && j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

}  // namespace solar
