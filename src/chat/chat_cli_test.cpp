// `solar chat` end to end: piped turns, a conversation that outgrows -c, and
// Ctrl-C on a real terminal (a pty) stopping a reply without ending the chat.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "testing/testing.h"

namespace solar::chat {
namespace {

const std::string kDir = std::string(SOLAR_SHARED_DATA) + "/models/stories260K";
const std::string kModel = "-m " + kDir + "/stories260K.bin --tokenizer " + kDir + "/tok512.bin";

#define NEED_STORIES() \
  if (!path_exists(kDir + "/tok512.bin")) GTEST_SKIP() << "shared data missing: " << kDir

struct ChatRun {
  int status = -1;
  std::string out, err;
};

// solar chat ARGS < input, stdout and stderr kept apart.
ChatRun chat(const std::string& args, const std::string& input) {
  std::string d = testing::temp_dir("chat_cli");
  write_file_atomic(d + "/in", input);
  std::string cmd = std::string(SOLAR_BIN) + " chat " + args + " < " + d + "/in > " + d + "/out 2> " + d + "/err";
  int st = std::system(cmd.c_str());
  ChatRun r;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = read_file(d + "/out");
  r.err = read_file(d + "/err");
  return r;
}

size_t count(const std::string& s, const std::regex& re) {
  return size_t(std::distance(std::sregex_iterator(s.begin(), s.end(), re), std::sregex_iterator()));
}
const std::regex kReply(R"(\[\d+ tokens, [0-9.]+ tok/s)");

TEST(ChatCli, PipedTurnsStayPlain) {
  NEED_STORIES();
  ChatRun r = chat(kModel + " -n 24 --temp 0", "Hello there\nTell me about \\\na cat\n\n/exit\nnever read\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count(r.err, kReply), 2u) << r.err;  // the continued line is one turn, /exit ends it
  EXPECT_FALSE(r.out.empty());
  // No prompt and no terminal escapes when stdin is not a terminal.
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
  EXPECT_EQ(r.err.find("> "), std::string::npos);
}

TEST(ChatCli, ConversationOutgrowsTheContext) {
  NEED_STORIES();
  std::string turns;
  for (int i = 0; i < 8; ++i) turns += "Once there was a dog number " + std::to_string(i) + "\n";
  ChatRun r = chat(kModel + " -c 64 -n 16 --temp 0", turns);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count(r.err, kReply), 8u) << r.err;
  EXPECT_NE(r.err.find("context full: dropped"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("does not fit"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("error"), std::string::npos) << r.err;

  // Replies without a length limit run into the end of the context: they stop with a message and the chat goes on.
  r = chat(kModel + " -c 64 -n -1 --temp 0 -sys \"Be kind.\"", turns);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count(r.err, kReply), 8u) << r.err;
  EXPECT_NE(r.err.find("context full: dropped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("filled the context"), std::string::npos) << r.err;

  // A message that cannot fit even alone is refused, and the chat goes on.
  r = chat(kModel + " -c 64 -n 16 --temp 0", std::string(200, 'x') + "\nHi\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("does not fit"), std::string::npos) << r.err;
  EXPECT_EQ(count(r.err, kReply), 1u) << r.err;
}

// `solar chat` on the slave side of a pseudo-terminal, as a user at a terminal
// runs it: libedit reads the lines, Ctrl-C is the terminal's SIGINT.
class PtyChat {
 public:
  explicit PtyChat(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_ = forkpty(&fd_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      setenv("TERM", "xterm", 1);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~PtyChat() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  bool started() const { return pid_ > 0; }
  const std::string& out() const { return out_; }
  void send(const std::string& s) { ASSERT_EQ(write(fd_, s.data(), s.size()), ssize_t(s.size())); }
  // Reads until `what` occurs at or after `from` (returns where, or npos at the deadline).
  size_t wait_for(const std::string& what, size_t from, double seconds) {
    auto end = deadline(seconds);
    while (true) {
      size_t p = out_.find(what, from);
      if (p != std::string::npos) return p;
      if (std::chrono::steady_clock::now() > end || !read_some(end)) return std::string::npos;
    }
  }
  // Reads until the output is `n` bytes longer than at `from`.
  bool wait_growth(size_t from, size_t n, double seconds) {
    auto end = deadline(seconds);
    while (out_.size() < from + n)
      if (!read_some(end)) return false;
    return true;
  }
  bool running() { return !exited_ && waitpid(pid_, &status_, WNOHANG) == 0; }
  // The exit status, or -1 if it has not exited by the deadline.
  int wait_exit(double seconds) {
    auto end = deadline(seconds);
    while (std::chrono::steady_clock::now() < end) {
      read_some(std::chrono::steady_clock::now() + std::chrono::milliseconds(50));
      if (waitpid(pid_, &status_, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
      }
    }
    return -1;
  }

 private:
  using Clock = std::chrono::steady_clock;
  static Clock::time_point deadline(double seconds) {
    return Clock::now() + std::chrono::milliseconds(int64_t(seconds * 1000));
  }
  bool read_some(Clock::time_point end) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, int(left.count())) <= 0) return false;
    char buf[4096];
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n <= 0) return false;  // EIO: the child closed the terminal
    out_.append(buf, size_t(n));
    return true;
  }
  pid_t pid_ = -1;
  int fd_ = -1, status_ = 0;
  bool exited_ = false;
  std::string out_;
};

TEST(ChatCli, CtrlCStopsTheReplyNotTheChat) {
  NEED_STORIES();
  // Random weights, big enough that a reply to the end of the context takes
  // seconds: Ctrl-C lands mid-reply on any machine.
  std::string d = testing::temp_dir("chat_pty");
  std::string init = std::string(SOLAR_BIN) + " init --preset 50m --layers 4 --vocab-size 512 --tokenizer " + kDir +
                     "/tok512.bin -o " + d + "/m > /dev/null 2>&1";
  ASSERT_EQ(std::system(init.c_str()), 0);
  const std::vector<std::string> args = {SOLAR_BIN, "chat", "-m", d + "/m", "-n", "-1", "--temp", "0", "-t", "1"};
  {
    PtyChat c(args);
    ASSERT_TRUE(c.started());
    size_t at = c.wait_for("> ", 0, 60);
    ASSERT_NE(at, std::string::npos) << c.out();
    for (const char* msg : {"Tell me a story\r", "And another\r"}) {
      size_t from = c.out().size();
      c.send(msg);
      ASSERT_NE(c.wait_for("\n", from, 30), std::string::npos) << c.out();  // the echo of the line
      // The reply streams. The line may be echoed twice (by the terminal before
      // libedit takes it, then by libedit), so wait for more than two echoes.
      ASSERT_TRUE(c.wait_growth(c.out().find('\n', from) + 1, 2 * std::strlen(msg) + 32, 60)) << c.out();
      c.send("\x03");
      size_t stop = c.wait_for("interrupted]", from, 30);
      ASSERT_NE(stop, std::string::npos) << c.out();
      ASSERT_NE(c.wait_for("> ", stop, 30), std::string::npos) << c.out();
      ASSERT_TRUE(c.running());
    }
    // /exit, not Ctrl-D: under ASan and load a ^D typed the moment the prompt
    // showed was once not seen within 30 s (Ctrl-D was checked by hand in tmux).
    c.send("/exit\r");
    EXPECT_EQ(c.wait_exit(30), 0) << c.out();
  }
  {
    PtyChat c(args);
    ASSERT_NE(c.wait_for("> ", 0, 60), std::string::npos) << c.out();
    c.send("\x03");  // Ctrl-C at the prompt quits, as llama-cli does
    EXPECT_EQ(c.wait_exit(30), 130) << c.out();
  }
}

}  // namespace
}  // namespace solar::chat
