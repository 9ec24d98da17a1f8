// Runs another program and captures its output, without fork(): the caller may have LibTorch / OpenMP
// threads running, and fork() in a multi-threaded process only copies the calling thread (a child that
// then touches a pool or a lock held by another thread deadlocks). posix_spawn (vfork + exec in glibc)
// runs nothing of the parent's code in the child.
#pragma once

#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace yq {

struct ProcessResult {
  int exit_code = -1;  // the program's exit status; 128 + N when killed by signal N
  std::string out;     // everything it wrote to stdout
  std::string err;     // everything it wrote to stderr
};

// Starts argv[0] (a path, or a name looked up in PATH) with the arguments argv[1..] (no shell, no
// quoting), feeds it no input, and waits for it. Throws yq::Error when it cannot be started.
ProcessResult run_process(const std::vector<std::string>& argv);

// A program kept running for many requests: its stdin and stdout are pipes to this process (text
// lines both ways); its stderr is drained by a thread of its own (so the child never blocks on a full
// pipe) and the last few kilobytes are kept for error messages. Started with posix_spawn like
// run_process. Not copyable. The destructor closes stdin, waits briefly for the child to exit and
// kills it if it does not.
class ChildProcess {
 public:
  // Starts argv[0] (a path, or a name looked up in PATH). Throws yq::Error when it cannot be started.
  explicit ChildProcess(const std::vector<std::string>& argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Writes `line` and a newline to the child's stdin. Throws yq::Error (with the exit code and the
  // last stderr lines) when the child has closed its stdin or died.
  void write_line(const std::string& line);
  // The next line of the child's stdout, without its newline. Waits at most `timeout_s` seconds
  // (<= 0: no limit). Throws yq::Error when the child exits first (with its exit code and its last
  // stderr lines) or on timeout.
  std::string read_line(double timeout_s = 0);
  // Closes the child's stdin and waits for it to exit (killing it after `grace_s` seconds); returns
  // its exit status (128 + N when killed by signal N). Later calls return the same status.
  int close(double grace_s = 5);
  // The last stderr lines (at most `n`) the child has written so far.
  std::string last_stderr(size_t n = 5) const;
  bool running() const { return pid_ > 0; }
  const std::string& program() const { return program_; }

 private:
  [[noreturn]] void fail(const std::string& what);
  void drain_stderr();
  int reap(double grace_s);

  std::string program_;
  int pid_ = -1;
  int status_ = -1;  // exit status once reaped
  int in_fd_ = -1, out_fd_ = -1, err_fd_ = -1;
  std::string out_buf_;  // stdout read but not yet returned as lines
  mutable std::mutex err_mu_;
  std::string err_tail_;  // the last kErrTail bytes of stderr
  std::thread err_thread_;
};

// The last `n` non-empty lines of `text`, each ending in a newline; "(nothing)" when there are none.
std::string last_lines(const std::string& text, size_t n);

// The running executable (/proc/self/exe resolved).
std::string self_executable();

}  // namespace yq
