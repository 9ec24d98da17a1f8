// Runs another program and captures its output, without fork(): the caller may have LibTorch / OpenMP
// threads running, and fork() in a multi-threaded process only copies the calling thread (a child that
// then touches a pool or a lock held by another thread deadlocks). posix_spawn (vfork + exec in glibc)
// runs nothing of the parent's code in the child.
#pragma once

#include <string>
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

// The running executable (/proc/self/exe resolved).
std::string self_executable();

}  // namespace yq
