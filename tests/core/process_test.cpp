// ChildProcess: a persistent child with line pipes (the ONNX Runtime server's transport). Uses /bin/sh
// scripts as children: lines round-trip in order, a child that dies mid-request or stops reading its
// input gives yq::Error with its exit code and last stderr lines (and does not kill this process with
// SIGPIPE), a child that floods stderr does not block, a silent child times out.
#include "core/process.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace yq {
namespace {

std::vector<std::string> sh(const std::string& script) {
  return {"/bin/sh", "-c", script};
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ChildProcess, RoundTripsLinesInOrder) {
  ChildProcess p(sh("while read l; do echo \"got $l\"; done"));
  for (int i = 0; i < 50; ++i) {
    p.write_line("line " + std::to_string(i));
    EXPECT_EQ(p.read_line(10), "got line " + std::to_string(i));
  }
  // Several requests in flight, answered in order.
  for (const char* s : {"a", "b c", ""}) p.write_line(s);
  EXPECT_EQ(p.read_line(10), "got a");
  EXPECT_EQ(p.read_line(10), "got b c");
  EXPECT_EQ(p.read_line(10), "got ");
  EXPECT_EQ(p.close(), 0);
  EXPECT_FALSE(p.running());
  EXPECT_EQ(p.close(), 0);  // same status again
}

TEST(ChildProcess, ReportsAChildThatDiesMidRequest) {
  ChildProcess p(sh("read l; echo \"first answer\"; read l; echo \"cannot go on: $l\" >&2; exit 3"));
  p.write_line("one");
  EXPECT_EQ(p.read_line(10), "first answer");
  p.write_line("two");
  const std::string msg = message_of([&] { p.read_line(10); });
  EXPECT_NE(msg.find("exit code 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot go on: two"), std::string::npos) << msg;
  EXPECT_FALSE(p.running());
  // Writing to it afterwards is an error too, not a crash.
  EXPECT_THROW(p.write_line("three"), Error);
}

TEST(ChildProcess, WriteToAChildThatClosedItsInputIsAnError) {
  // The child closes stdin and says so; a write then meets EPIPE (SIGPIPE must not end this process).
  ChildProcess p(sh("exec 0<&-; echo closed; echo bye >&2; sleep 0.2; exit 5"));
  EXPECT_EQ(p.read_line(10), "closed");
  std::string msg;
  for (int i = 0; i < 100 && msg.empty(); ++i) {  // a pipe buffers one line; keep writing until EPIPE
    try {
      p.write_line(std::string(4096, 'x'));
    } catch (const Error& e) {
      msg = e.what();
    }
  }
  EXPECT_NE(msg.find("exit code 5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bye"), std::string::npos) << msg;
}

TEST(ChildProcess, StderrFloodDoesNotBlock) {
  // 1 MB on stderr before the answer: more than a pipe holds, so stderr must be drained meanwhile.
  ChildProcess p(
      sh("read l; head -c 1000000 /dev/zero | tr '\\0' 'x' >&2; echo >&2; echo tail line >&2; echo done"));
  p.write_line("go");
  EXPECT_EQ(p.read_line(30), "done");
  EXPECT_EQ(p.close(), 0);
  EXPECT_EQ(p.last_stderr(1), "tail line\n");
}

TEST(ChildProcess, SilentChildTimesOutAndIsKilled) {
  ChildProcess p(sh("exec sleep 30"));
  const std::string msg = message_of([&] { p.read_line(0.2); });
  EXPECT_NE(msg.find("no answer within"), std::string::npos) << msg;
  EXPECT_EQ(p.close(0.1), 128 + 15);  // closing stdin does not end `sleep`: SIGTERM does
}

TEST(ChildProcess, MissingProgramIsAnError) {
  EXPECT_THROW(ChildProcess({"/nonexistent/program"}), Error);
}

TEST(LastLines, KeepsTheLastNonEmptyLines) {
  EXPECT_EQ(last_lines("a\n\nb\nc\n", 2), "b\nc\n");
  EXPECT_EQ(last_lines("", 3), "(nothing)");
}

}  // namespace
}  // namespace yq
