#include "cli/cli.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "formats/load.h"

namespace solar::cli {

std::map<std::string, Command>& registry() {
  static std::map<std::string, Command> r;
  return r;
}

struct Args::Opt {
  std::vector<std::string> names;
  std::string metavar, help, def;
  enum Kind { Str, Int, Num, Flag, List } kind;
  std::string s;
  int64_t i = 0, lo = INT64_MIN, hi = INT64_MAX;  // integers outside [lo, hi] are refused by parse()
  std::string range;                               // [lo, hi] in words, for that message
  double d = 0;
  bool b = false;
  std::vector<std::string> l;
};

Args::Args(std::string command, std::string usage) : command_(std::move(command)), usage_(std::move(usage)) {}
Args::~Args() = default;

static std::vector<std::string> split_names(const std::string& names) {
  std::vector<std::string> out;
  std::stringstream ss(names);
  std::string n;
  while (std::getline(ss, n, ',')) out.push_back(n);
  return out;
}

std::string& Args::str(const std::string& names, const std::string& metavar, const std::string& help, std::string def) {
  auto o = std::make_unique<Opt>();
  o->names = split_names(names);
  o->metavar = metavar;
  o->help = help;
  o->kind = Opt::Str;
  o->s = def;
  o->def = def;
  opts_.push_back(std::move(o));
  return opts_.back()->s;
}
int64_t& Args::integer(const std::string& names, int64_t def, const std::string& help) {
  auto o = std::make_unique<Opt>();
  o->names = split_names(names);
  o->metavar = "N";
  o->help = help;
  o->kind = Opt::Int;
  o->i = def;
  o->def = std::to_string(def);
  opts_.push_back(std::move(o));
  return opts_.back()->i;
}
int64_t& Args::integer(const std::string& names, const std::string& help) {
  int64_t& v = integer(names, 0, help);
  opts_.back()->def.clear();
  return v;
}
int64_t& Args::integer(const std::string& names, int64_t def, const std::string& help, int64_t lo, int64_t hi) {
  int64_t& v = integer(names, def, help);
  opts_.back()->lo = lo;
  opts_.back()->hi = hi;
  opts_.back()->range = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return v;
}
int64_t& Args::threads(int64_t def) {
  int64_t& v = integer("-t,--threads", def, "threads; 0 = all cores, at most " + std::to_string(max_threads()), 0,
                       max_threads());
  opts_.back()->range = "0 (all cores) or 1.." + std::to_string(max_threads());
  return v;
}
double& Args::number(const std::string& names, double def, const std::string& help) {
  auto o = std::make_unique<Opt>();
  o->names = split_names(names);
  o->metavar = "X";
  o->help = help;
  o->kind = Opt::Num;
  o->d = def;
  std::ostringstream ss;
  ss << def;
  o->def = ss.str();
  opts_.push_back(std::move(o));
  return opts_.back()->d;
}
bool& Args::flag(const std::string& names, const std::string& help) {
  auto o = std::make_unique<Opt>();
  o->names = split_names(names);
  o->help = help;
  o->kind = Opt::Flag;
  opts_.push_back(std::move(o));
  return opts_.back()->b;
}
std::vector<std::string>& Args::list(const std::string& names, const std::string& metavar, const std::string& help) {
  auto o = std::make_unique<Opt>();
  o->names = split_names(names);
  o->metavar = metavar;
  o->help = help;
  o->kind = Opt::List;
  opts_.push_back(std::move(o));
  return opts_.back()->l;
}
std::vector<std::string>& Args::positional(const std::string& metavar, const std::string& help) {
  auto o = std::make_unique<Opt>();
  o->kind = Opt::List;
  o->metavar = metavar;
  o->help = help;
  opts_.push_back(std::move(o));
  positional_ = &opts_.back()->l;
  positional_meta_ = metavar;
  positional_help_ = help;
  return *positional_;
}

Args::Opt* Args::find(const std::string& name) {
  for (auto& o : opts_)
    for (auto& n : o->names)
      if (n == name) return o.get();
  // Spellings older versions used for -o/--output; accepted, not advertised.
  if (name == "--out" || name == "--output-dir") return find("--output");
  return nullptr;
}

bool Args::given(const std::string& name) const {
  for (auto& g : given_)
    if (g == name) return true;
  return false;
}

std::string Args::usage() const {
  std::ostringstream ss;
  auto line = [&](const std::string& left, const std::string& help) {
    ss << "  " << left << std::string(left.size() < 30 ? 30 - left.size() : 0, ' ') << " " << help << "\n";
  };
  ss << "usage: " << usage_ << "\n\noptions:\n";
  for (auto& o : opts_) {
    if (o->names.empty()) continue;
    std::string left;
    for (size_t i = 0; i < o->names.size(); ++i) left += (i ? ", " : "") + o->names[i];
    if (o->kind != Opt::Flag) left += " " + o->metavar;
    // Authors sometimes word the default or repeatability themselves: say it once.
    std::string help = o->help;
    auto says = [&](const char* w) { return o->help.find(w) != std::string::npos; };
    if (o->kind == Opt::List && !says("repeatable")) help += " (repeatable)";
    if (o->kind != Opt::Flag && o->kind != Opt::List && !o->def.empty() && !says("default") && !says("required"))
      help += " (default: " + o->def + ")";
    line(left, help);
  }
  if (positional_) line(positional_meta_, positional_help_);
  line("-h, --help", "show this help");
  line("--log-format, --log-level, --check-tensors", "global options: see solar --help");
  return ss.str();
}

bool Args::parse(const std::vector<std::string>& argv) {
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(usage().c_str(), stdout);
      exit_code_ = 0;
      return false;
    }
    std::string val;
    bool has_inline = false;
    if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
      val = a.substr(a.find('=') + 1);
      a = a.substr(0, a.find('='));
      has_inline = true;
    }
    Opt* o = (a.size() > 1 && a[0] == '-' && !(a.size() > 1 && (isdigit(a[1]) || a[1] == '.'))) ? find(a) : nullptr;
    const bool global = !o && is_global_option(a);  // --log-format, --log-level
    if (!o && !global) {
      if (a.size() > 1 && a[0] == '-' && !isdigit(a[1])) {
        std::fprintf(stderr, "solar %s: error: unknown option '%s' (see solar %s --help)\n", command_.c_str(),
                     a.c_str(), command_.c_str());
        exit_code_ = 2;
        return false;
      }
      if (!positional_) {
        std::fprintf(stderr, "solar %s: error: unexpected argument '%s' (see solar %s --help)\n", command_.c_str(),
                     a.c_str(), command_.c_str());
        exit_code_ = 2;
        return false;
      }
      positional_->push_back(argv[i]);
      continue;
    }
    if (o) {
      // A second value would silently replace the first (`-n 1 … -n 500`):
      // only repeatable options (lists) may come twice.
      if (o->kind != Opt::List && given(o->names[0])) {
        std::fprintf(stderr, "solar %s: error: %s: given twice (expected once; see solar %s --help)\n",
                     command_.c_str(), a.c_str(), command_.c_str());
        exit_code_ = 2;
        return false;
      }
      given_.push_back(o->names[0]);
      for (auto& n : o->names) given_.push_back(n);
      if (o->kind == Opt::Flag) {
        o->b = true;
        continue;
      }
    }
    if (!has_inline) {
      if (i + 1 >= argv.size()) {
        std::fprintf(stderr, "solar %s: error: %s expects a value\n", command_.c_str(), a.c_str());
        exit_code_ = 2;
        return false;
      }
      val = argv[++i];
    }
    if (global) {
      try {
        apply_global_option(a, val);
      } catch (const UsageError& e) {
        std::fprintf(stderr, "solar %s: error: %s\n", command_.c_str(), e.what());
        exit_code_ = 2;
        return false;
      }
      continue;
    }
    try {
      size_t used = 0;
      switch (o->kind) {
        case Opt::Str: o->s = val; break;
        case Opt::List: o->l.push_back(val); break;
        case Opt::Int:
          o->i = std::stoll(val, &used);
          if (used != val.size()) throw std::invalid_argument("");
          if (o->i < o->lo || o->i > o->hi) {
            std::fprintf(stderr, "solar %s: error: %s: expected %s, got %s\n", command_.c_str(), a.c_str(),
                         o->range.c_str(), val.c_str());
            exit_code_ = 2;
            return false;
          }
          break;
        case Opt::Num:
          o->d = std::stod(val, &used);
          if (used != val.size()) throw std::invalid_argument("");
          break;
        default: break;
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "solar %s: error: %s: expected %s, got '%s'\n", command_.c_str(), a.c_str(),
                   o->kind == Opt::Int ? "an integer" : "a number", val.c_str());
      exit_code_ = 2;
      return false;
    }
  }
  return true;
}

void check_range(const std::string& flag, double v, double lo, double hi) {
  if (!(v >= lo && v <= hi)) {
    std::ostringstream ss;
    ss << flag << ": expected a value in [" << lo << ", " << hi << "], got " << v;
    throw UsageError(ss.str());
  }
}

void usage_error(const std::string& msg) { throw UsageError(msg); }

namespace {
bool g_json_logs = false;
}

bool is_global_option(const std::string& name) {
  return name == "--log-format" || name == "--log-level" || name == "--check-tensors";
}

void apply_global_option(const std::string& name, const std::string& value) {
  if (name == "--log-level") {
    set_log_level(parse_log_level(value, name));
  } else if (name == "--log-format") {
    if (value != "plain" && value != "json") fail(name, "", "expected plain or json, got \"" + value + "\"");
    g_json_logs = value == "json";
    set_log_sink(g_json_logs ? json_log_sink(stderr) : plain_log_sink(stderr));
  } else if (name == "--check-tensors") {
    if (value != "on" && value != "off") fail(name, "", "expected on or off, got \"" + value + "\"");
    formats::set_check_tensors_default(value == "on");
  } else {
    fail(name, "", "not a global option");
  }
}

std::string global_options_help() {
  return "global options (before the command or among its flags):\n"
         "  --log-format plain|json          messages on stderr as plain lines or JSON lines (default: plain)\n"
         "  --log-level debug|info|warn|error|off   least severe message shown (default: info)\n"
         "  --check-tensors on|off           scan loaded weights for NaN/Inf (default: on)\n";
}

bool json_logs() { return g_json_logs; }

int max_threads() { return int(std::max(8u, 4 * std::thread::hardware_concurrency())); }

std::string version_string() {
  std::string v = std::string("solar ") + SOLAR_VERSION;
  if (*SOLAR_GIT_COMMIT) v += std::string(" (git ") + SOLAR_GIT_COMMIT + ")";
  return v;
}

}  // namespace solar::cli
