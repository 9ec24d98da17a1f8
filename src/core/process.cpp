#include "core/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/error.h"

extern char** environ;

namespace yq {

namespace {

// Closes a descriptor once (the pair of pipe ends is closed on every path).
struct Fd {
  int fd = -1;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

void make_pipe(Fd& r, Fd& w) {
  int p[2];
  YQ_CHECK(::pipe2(p, O_CLOEXEC) == 0, "pipe: {}", std::strerror(errno));
  r.fd = p[0], w.fd = p[1];
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv) {
  YQ_ASSERT(!argv.empty());
  Fd out_r, out_w, err_r, err_w, in_r;
  make_pipe(out_r, out_w);
  make_pipe(err_r, err_w);
  in_r.fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  YQ_CHECK(in_r.fd >= 0, "cannot open /dev/null: {}", std::strerror(errno));

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  // dup2 clears O_CLOEXEC on the target descriptor; every other descriptor closes at exec.
  posix_spawn_file_actions_adddup2(&fa, in_r.fd, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.fd, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  YQ_CHECK(rc == 0, "cannot start {}: {}", argv[0], std::strerror(rc));
  out_w.reset(), err_w.reset(), in_r.reset();

  // Read both pipes until both close (reading one alone could block while the other fills up).
  ProcessResult res;
  pollfd fds[2] = {{out_r.fd, POLLIN, 0}, {err_r.fd, POLLIN, 0}};
  std::string* dst[2] = {&res.out, &res.err};
  int open = 2;
  char buf[65536];
  while (open > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int k = 0; k < 2; ++k) {
      if (fds[k].fd < 0 || fds[k].revents == 0) continue;
      const ssize_t n = ::read(fds[k].fd, buf, sizeof buf);
      if (n > 0) {
        dst[k]->append(buf, size_t(n));
      } else if (n == 0 || errno != EINTR) {
        fds[k].fd = -1;  // poll ignores negative descriptors
        --open;
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status))
    res.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    res.exit_code = 128 + WTERMSIG(status);
  return res;
}

std::string last_lines(const std::string& text, size_t n) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) out += lines[i] + "\n";
  return out.empty() ? "(nothing)" : out;
}

// ---- ChildProcess ----

namespace {

constexpr size_t kErrTail = 16384;  // bytes of the child's stderr kept for messages

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv) {
  YQ_ASSERT(!argv.empty());
  program_ = argv[0];
  Fd in_r, in_w, out_r, out_w, err_r, err_w;
  make_pipe(in_r, in_w);
  make_pipe(out_r, out_w);
  make_pipe(err_r, err_w);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.fd, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.fd, 2);
  // The child starts with no blocked signals and SIGPIPE at its default, whatever this thread has.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, pipe_only;
  sigemptyset(&none);
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &pipe_only);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  YQ_CHECK(rc == 0, "cannot start {}: {}", argv[0], std::strerror(rc));
  pid_ = pid;
  std::swap(in_fd_, in_w.fd);
  std::swap(out_fd_, out_r.fd);
  std::swap(err_fd_, err_r.fd);
  err_thread_ = std::thread([this] { drain_stderr(); });
}

ChildProcess::~ChildProcess() {
  try {
    close(2);
  } catch (...) {
  }
  if (err_thread_.joinable()) err_thread_.join();
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
}

void ChildProcess::drain_stderr() {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(err_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard<std::mutex> lock(err_mu_);
    err_tail_.append(buf, size_t(n));
    if (err_tail_.size() > 2 * kErrTail) err_tail_.erase(0, err_tail_.size() - kErrTail);
  }
}

std::string ChildProcess::last_stderr(size_t n) const {
  std::lock_guard<std::mutex> lock(err_mu_);
  return last_lines(err_tail_, n);
}

int ChildProcess::reap(double grace_s) {
  if (pid_ <= 0) return status_;
  const auto t0 = std::chrono::steady_clock::now();
  int sent = 0;  // 1: SIGTERM sent, 2: SIGKILL sent
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = decode_status(status);
      break;
    }
    if (r < 0 && errno != EINTR) {  // not our child any more (reaped elsewhere): nothing to wait for
      status_ = -1;
      break;
    }
    const double waited = seconds_since(t0);
    if (sent == 0 && waited >= grace_s) {
      ::kill(pid_, SIGTERM);
      sent = 1;
    } else if (sent == 1 && waited >= grace_s + 2) {
      ::kill(pid_, SIGKILL);
      sent = 2;
    }
    ::usleep(2000);
  }
  pid_ = -1;
  // The child is gone: its stderr closes, so the drain thread ends (unless a grandchild holds it).
  if (err_thread_.joinable()) err_thread_.join();
  return status_;
}

int ChildProcess::close(double grace_s) {
  if (in_fd_ >= 0) {
    ::close(in_fd_);
    in_fd_ = -1;
  }
  return reap(grace_s);
}

void ChildProcess::fail(const std::string& what) {
  // The child closed a pipe: it is exiting (or gone); give it a moment and collect its status.
  if (in_fd_ >= 0) {
    ::close(in_fd_);
    in_fd_ = -1;
  }
  const int code = reap(2);
  throw Error(
      fmt::format("{} {} (exit code {}); its last messages:\n{}", program_, what, code, last_stderr(8)));
}

void ChildProcess::write_line(const std::string& line) {
  YQ_CHECK(in_fd_ >= 0, "{}: its input is closed (exit code {})", program_, status_);
  const std::string text = line + "\n";
  // A write to a pipe whose reader is gone raises SIGPIPE, which would end this process: block it in
  // this thread for the write and consume a SIGPIPE this write raised, so EPIPE comes back instead.
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE);
  size_t done = 0;
  int err = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(in_fd_, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += size_t(n);
  }
  if (err == EPIPE && !was_pending) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err == EPIPE) fail("stopped reading its input");
  YQ_CHECK(err == 0, "cannot write to {}: {}", program_, std::strerror(err));
}

std::string ChildProcess::read_line(double timeout_s) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    const size_t nl = out_buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = out_buf_.substr(0, nl);
      out_buf_.erase(0, nl + 1);
      return line;
    }
    YQ_CHECK(out_fd_ >= 0, "{}: its output is closed (exit code {})", program_, status_);
    int wait_ms = -1;
    if (timeout_s > 0) {
      const double left = timeout_s - seconds_since(t0);
      if (left <= 0)
        throw Error(fmt::format("{} gave no answer within {} s; its last messages:\n{}", program_, timeout_s,
                                last_stderr(8)));
      wait_ms = int(left * 1000) + 1;
    }
    pollfd p{out_fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, wait_ms);
    if (r < 0 && errno != EINTR)
      throw Error(fmt::format("poll on {}'s output: {}", program_, std::strerror(errno)));
    if (r <= 0) continue;
    char buf[65536];
    const ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(out_fd_);
      out_fd_ = -1;
      fail("exited before answering");
    }
    out_buf_.append(buf, size_t(n));
  }
}

std::string self_executable() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  YQ_CHECK(!ec, "cannot resolve /proc/self/exe: {}", ec.message());
  return p.string();
}

}  // namespace yq
