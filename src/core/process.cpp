#include "core/process.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
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

std::string self_executable() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  YQ_CHECK(!ec, "cannot resolve /proc/self/exe: {}", ec.message());
  return p.string();
}

}  // namespace yq
