// Inputs: only regular files, bounded when read whole, never a blocking open.
// Outputs: the leftovers of a killed writer are removed by the next one.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>

#include "core/fs.h"
#include "core/mmap.h"
#include "testing/testing.h"

namespace solar {
namespace {

using testing::error_of;
using testing::dead_pid;
using testing::temp_dir;
namespace fs = std::filesystem;

bool has(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

// The error `read` throws for the FIFO, within 5 s: before the fix open()
// blocked until a writer came, so a writer is supplied to free the thread.
std::string fifo_error(const std::string& fifo, std::function<void()> read) {
  auto f = std::async(std::launch::async, [&] { return error_of(read); });
  if (f.wait_for(std::chrono::seconds(5)) == std::future_status::ready) return f.get();
  int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
  if (w >= 0) ::close(w);
  f.wait();
  return "blocked on the FIFO";
}

TEST(FsInput, FifoDeviceFolderAndSocketAreRefusedNamingWhatTheyAre) {
  std::string d = temp_dir("fs_input");
  std::string fifo = join_path(d, "fifo"), sock = join_path(d, "sock");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  for (auto read : std::vector<std::function<void()>>{[&] { read_file(fifo); }, [&] { read_file_prefix(fifo, 4); },
                                                      [&] { MappedFile::open(fifo); }, [&] { check_input_file(fifo); }}) {
    std::string e = fifo_error(fifo, read);
    EXPECT_EQ(e, fifo + ": expected a regular file, got a FIFO (named pipe)");
  }
  EXPECT_EQ(error_of([] { read_file("/dev/zero"); }), "/dev/zero: expected a regular file, got a character device");
  EXPECT_EQ(error_of([] { MappedFile::open("/dev/null"); }), "/dev/null: expected a regular file, got a character device");
  EXPECT_EQ(error_of([&] { read_file(d); }), d + ": expected a regular file, got a folder");
  EXPECT_EQ(error_of([&] { read_file_prefix(d, 4); }), d + ": expected a regular file, got a folder");

  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", sock.c_str());
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(error_of([&] { read_file(sock); }), sock + ": expected a regular file, got a socket");
  ::close(s);

  EXPECT_TRUE(has(error_of([&] { read_file(join_path(d, "missing")); }), "missing: cannot open: No such file"));
  // A symlink to a regular file is that file.
  write_file_atomic(join_path(d, "real"), "hello");
  fs::create_symlink(join_path(d, "real"), join_path(d, "link"));
  EXPECT_EQ(read_file(join_path(d, "link")), "hello");
  EXPECT_EQ(MappedFile::open(join_path(d, "link"))->size(), 5u);
  fs::remove_all(d);
}

TEST(FsInput, WholeReadsAreBounded) {
  std::string d = temp_dir("fs_bound");
  std::string p = join_path(d, "f");
  write_file_atomic(p, std::string(100, 'x'));
  EXPECT_EQ(read_file(p, 100).size(), 100u);
  EXPECT_EQ(error_of([&] { read_file(p, 99); }), p + ": expected at most 99 bytes (the file is read whole), got 100");
  EXPECT_EQ(read_file_prefix(p, 7), "xxxxxxx");
  EXPECT_EQ(read_file_prefix(p, 1000).size(), 100u);
  // /proc files are regular but report size 0: the bound still holds while reading.
  EXPECT_FALSE(read_file("/proc/self/status").empty());
  EXPECT_TRUE(has(error_of([] { read_file("/proc/self/status", 10); }), "expected at most 10 bytes"));
  fs::remove_all(d);
}

TEST(FsLeftovers, WritersRemoveWhatDeadProcessesLeft) {
  std::string d = temp_dir("fs_leftovers");
  const std::string out = join_path(d, "out"), dead = std::to_string(dead_pid());
  const std::string alive = std::to_string(getppid());
  for (const std::string& n : std::vector<std::string>{"out.tmp-" + dead, "out.old-" + dead, "out.tmp-" + alive, "other.tmp-" + dead,
                        "out.tmp-99999999999", "out.tmp-0", "out.tmp-x" + dead})
    make_dirs(join_path(join_path(d, n), "sub"));
  write_file_atomic(join_path(d, "out.bin.tmp-" + dead), "partial");
  std::string tmp = temp_path_for(out + "/");
  EXPECT_EQ(tmp, out + ".tmp-" + std::to_string(getpid()));
  EXPECT_FALSE(path_exists(join_path(d, "out.tmp-" + dead)));
  EXPECT_FALSE(path_exists(join_path(d, "out.old-" + dead)));
  for (const std::string& kept : std::vector<std::string>{"out.tmp-" + alive, "other.tmp-" + dead, "out.tmp-99999999999", "out.tmp-0",
                           "out.tmp-x" + dead, "out.bin.tmp-" + dead})
    EXPECT_TRUE(path_exists(join_path(d, kept))) << kept;
  // Each atomic file writer cleans its own name's leftovers.
  write_file_atomic(join_path(d, "out.bin"), "done");
  EXPECT_FALSE(path_exists(join_path(d, "out.bin.tmp-" + dead)));
  EXPECT_EQ(read_file(join_path(d, "out.bin")), "done");
  // Filtered by stem: what another name left stays.
  auto removed = remove_dead_leftovers(d, [](const std::string& stem) { return stem == "other"; });
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0], "other.tmp-" + dead);
  fs::remove_all(d);
}

TEST(FsOverlap, OutputInsideOrAroundTheInputIsDetected) {
  std::string d = temp_dir("fs_overlap");
  std::string a = join_path(d, "a");
  make_dirs(a);
  write_file_atomic(join_path(a, "model.safetensors"), "x");
  fs::create_symlink(a, join_path(d, "link"));
  EXPECT_TRUE(paths_overlap(a, join_path(a, "model.safetensors")));
  EXPECT_TRUE(paths_overlap(join_path(a, "model.safetensors"), a));
  EXPECT_TRUE(paths_overlap(a, a + "/"));
  EXPECT_TRUE(paths_overlap(a, join_path(d, "b/../a")));
  EXPECT_TRUE(paths_overlap(join_path(d, "link/new"), a));  // through a symlink, to a path not yet there
  EXPECT_TRUE(paths_overlap(d, a));
  EXPECT_FALSE(paths_overlap(a, join_path(d, "ab")));
  EXPECT_FALSE(paths_overlap(a, join_path(d, "b")));
  fs::remove_all(d);
}

}  // namespace
}  // namespace solar
