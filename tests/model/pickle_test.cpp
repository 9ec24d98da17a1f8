#include "model/pickle.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "model/pickle_test_util.h"

namespace yq::model::pickle {
namespace {

using yq::testing::fixture_dir;
using yq::testing::PickleBytes;
using yq::testing::read_bytes;

// Expects parse() to throw yq::Error whose message contains `needle`.
void expect_refused(const std::string& bytes, const std::string& needle, const PickleLimits& limits = {}) {
  try {
    parse(bytes, "t.pkl", limits);
    FAIL() << "accepted a pickle that should be refused (" << needle << ")";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// The values of make_reference_pt.py's `values` dict, in any protocol.
void check_values(const Pickle& p) {
  const Value* root = p.root();
  ASSERT_TRUE(root->is(Kind::Dict));
  const Value* a = root->get("a");
  ASSERT_TRUE(a && a->is(Kind::List));
  ASSERT_EQ(a->items.size(), 10u);
  EXPECT_EQ(a->items[0]->integer, 1);
  EXPECT_EQ(a->items[1]->integer, -2);
  EXPECT_EQ(a->items[2]->integer, 300);
  EXPECT_EQ(a->items[3]->integer, 70000);
  EXPECT_EQ(a->items[4]->integer, -(int64_t{1} << 40));
  EXPECT_EQ(a->items[5]->integer, INT64_MAX);
  EXPECT_EQ(a->items[6]->real, 1.5);
  EXPECT_TRUE(a->items[7]->is(Kind::None));
  EXPECT_TRUE(a->items[8]->is(Kind::Bool) && a->items[8]->boolean);
  EXPECT_TRUE(a->items[9]->is(Kind::Bool) && !a->items[9]->boolean);
  EXPECT_EQ(root->get("s")->text, "h\xc3\xa9llo");
  ASSERT_TRUE(root->get("b")->is(Kind::Bytes));
  EXPECT_EQ(root->get("b")->text, std::string("\x00\xff\x80"
                                              "ab",
                                              5));
  const Value* t = root->get("t");
  ASSERT_TRUE(t->is(Kind::Tuple));
  EXPECT_EQ(t->items.size(), 3u);
  EXPECT_EQ(t->items[2]->integer, 3);
  const Value* od = root->get("od");
  ASSERT_TRUE(od->is(Kind::Dict));
  EXPECT_EQ(od->get("y")->integer, 2);
  EXPECT_EQ(od->entries[0].first->text, "x");
  ASSERT_TRUE(root->get("set")->is(Kind::Set));
  EXPECT_EQ(root->get("set")->items.at(0)->integer, 7);
  ASSERT_TRUE(root->get("fs")->is(Kind::Set));
  EXPECT_EQ(root->get("fs")->items.at(0)->integer, 8);
}

TEST(Pickle, ReadsPythonProtocol2) {
  check_values(parse(read_bytes(fixture_dir() + "/values_p2.pkl")));
}

TEST(Pickle, ReadsPythonProtocol4FramesAndMemoize) {
  check_values(parse(read_bytes(fixture_dir() + "/values_p4.pkl")));
}

TEST(Pickle, MemoSharesValuesAndLastDuplicateKeyWins) {
  PickleBytes p;
  p.op('}').put(0).op('(').str("k").op(']').put(1).str("k2").get(1).str("k").i(5).op('u');
  p.op('(').i(9).op('e');  // APPEND to the dict: refused below; first build a valid one
  std::string bad = p.stop();
  expect_refused(bad, "APPENDS to a dict");

  PickleBytes q;
  q.op('}').put(0).op('(').str("k").op(']').put(1).str("k2").get(1).str("k").i(5).op('u');
  q.get(1).i(9).op('a').op('0');  // append 9 to the memoized list, then pop it
  Pickle r = parse(q.stop());
  const Value* root = r.root();
  EXPECT_EQ(root->get("k")->integer, 5);  // the later SETITEMS entry wins
  ASSERT_TRUE(root->get("k2")->is(Kind::List));
  EXPECT_EQ(root->get("k2")->items.size(), 1u);  // the append through the memo is visible
  EXPECT_EQ(root->get("k2")->items[0]->integer, 9);
}

TEST(Pickle, ObjectsRecordClassArgsAndState) {
  PickleBytes p;
  p.global("ultralytics.nn.modules", "Conv").op(')').op(0x81);  // NEWOBJ
  p.op('}').str("training").op(0x89).op('s').op('b');           // BUILD {training: False}
  Pickle r = parse(p.stop());
  const Value* o = r.root();
  ASSERT_TRUE(o->is(Kind::Object));
  EXPECT_EQ(o->text, "ultralytics.nn.modules.Conv");
  ASSERT_TRUE(o->attr("training"));
  EXPECT_FALSE(o->attr("training")->boolean);

  // BUILD again with the same state, then with another dict: attributes merge, nothing is duplicated.
  PickleBytes twice;
  twice.global("ultralytics.nn.modules", "Conv").op(')').op(0x81);
  twice.op('}').put(3).str("a").i(1).op('s').op('b').get(3).op('b');
  twice.op('}').str("b").i(2).op('s').op('b');
  Pickle rt = parse(twice.stop());
  ASSERT_TRUE(rt.root()->state);
  EXPECT_EQ(rt.root()->state->entries.size(), 2u);
  EXPECT_EQ(rt.root()->attr("b")->integer, 2);

  PickleBytes q;  // REDUCE of a non-special allowed callable is an Object too; nothing is called
  q.global("torch", "device").str("cpu").op(0x85).op('R');
  Pickle rq = parse(q.stop());
  EXPECT_EQ(rq.root()->text, "torch.device");
  ASSERT_EQ(rq.root()->items.size(), 1u);
  EXPECT_EQ(rq.root()->items[0]->text, "cpu");
}

TEST(Pickle, RebuildsTensorRecordsAndUnwrapsParameters) {
  PickleBytes p;
  p.global("torch._utils", "_rebuild_parameter").op('(');
  p.tensor("HalfStorage", "7", 24, 2, {2, 3}, {6, 2})
      .op(0x88)
      .global("collections", "OrderedDict")
      .op(')')
      .op('R');
  p.op('t').op('R');
  Pickle r = parse(p.stop());
  const Value* t = r.root();
  ASSERT_TRUE(t->is(Kind::Tensor));
  EXPECT_EQ(t->tensor->storage_key, "7");
  EXPECT_EQ(t->tensor->dtype, DType::Float16);
  EXPECT_EQ(t->tensor->location, "cpu");
  EXPECT_EQ(t->tensor->storage_numel, 24);
  EXPECT_EQ(t->tensor->offset, 2);
  EXPECT_EQ(t->tensor->sizes, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t->tensor->strides, (std::vector<int64_t>{6, 2}));
  EXPECT_TRUE(t->tensor->requires_grad);
  EXPECT_EQ(t->tensor->numel(), 6);
  EXPECT_EQ(r.tensors().size(), 1u);
}

TEST(Pickle, RefusesTensorsOutsideTheirStorage) {
  // Last element: 2 + 1 * 6 + 2 * 2 = 12 < 13 is fine; numel 12 is one short.
  EXPECT_NO_THROW(parse(PickleBytes().tensor("FloatStorage", "0", 13, 2, {2, 3}, {6, 2}).stop()));
  expect_refused(PickleBytes().tensor("FloatStorage", "0", 12, 2, {2, 3}, {6, 2}).stop(),
                 "reaches element 12");
  expect_refused(PickleBytes().tensor("FloatStorage", "0", 12, 13, {0}, {1}).stop(), "offset 13 is outside");
  expect_refused(PickleBytes().tensor("FloatStorage", "0", 12, 0, {-1, 3}, {3, 1}).stop(), "negative size");
  expect_refused(PickleBytes().tensor("FloatStorage", "0", 12, 0, {2, 3}, {-3, 1}).stop(), "negative size");
  expect_refused(PickleBytes().tensor("FloatStorage", "0", 12, -1, {2}, {1}).stop(), "outside its storage");
  expect_refused(PickleBytes().tensor("FloatStorage", "0", 12, 0, {2, 3}, {1}).stop(),
                 "2 sizes but 1 strides");
  expect_refused(
      PickleBytes().tensor("FloatStorage", "0", 1 << 30, 0, {1 << 30, 1 << 30, 1 << 30}, {1, 1, 1}).stop(),
      "overflows");
  expect_refused(PickleBytes().tensor("FloatStorage", "0", -5, 0, {0}, {1}).stop(), "invalid size");
  expect_refused(PickleBytes().tensor("PyObjectStorage", "0", 1, 0, {1}, {1}).stop(),
                 "unsupported storage type torch.PyObjectStorage");
  // The same storage key with two different sizes is inconsistent.
  PickleBytes two;
  two.op('(')
      .tensor("FloatStorage", "0", 12, 0, {2}, {1})
      .tensor("FloatStorage", "0", 13, 0, {2}, {1})
      .op('l');
  expect_refused(two.stop(), "described twice");
}

TEST(Pickle, RefusesCodeExecutionGlobals) {
  // os.system("...") the way pickle writes it on Linux (posix.system), builtins.eval, subprocess.Popen.
  expect_refused(PickleBytes().global("posix", "system").str("touch /tmp/x").op(0x85).op('R').stop(),
                 "names posix.system");
  expect_refused(PickleBytes().global("os", "system").str("id").op(0x85).op('R').stop(), "names os.system");
  expect_refused(PickleBytes().global("builtins", "eval").str("1").op(0x85).op('R').stop(), "builtins.eval");
  PickleBytes sg;  // STACK_GLOBAL is checked the same way
  sg.str("subprocess").str("Popen").op(0x93).str("ls").op(0x85).op('R');
  expect_refused(sg.stop(), "subprocess.Popen");
  expect_refused(PickleBytes().global("builtins", "getattr").stop(), "builtins.getattr");
  EXPECT_TRUE(global_allowed("torch.nn.modules.conv", "Conv2d"));
  EXPECT_TRUE(global_allowed("ultralytics.nn.tasks", "DetectionModel"));
  EXPECT_FALSE(global_allowed("torchvision_evil", "x"));  // a prefix is not a package
  EXPECT_FALSE(global_allowed("builtins", "exec"));
  // Text persistent ids and protocol-0/1 object opcodes are not read at all.
  expect_refused(PickleBytes().op('P').raw("x\n").stop(), "unsupported or unsafe opcode");
  expect_refused(PickleBytes().op('i').raw("os\nsystem\n").stop(), "unsupported or unsafe opcode");
  // A persistent id that is not a storage.
  expect_refused(PickleBytes().str("x").op('Q').stop(), "unsupported persistent id");
}

TEST(Pickle, RefusesTruncatedAndMalformedInput) {
  std::string good = read_bytes(fixture_dir() + "/values_p2.pkl");
  for (size_t n = 0; n < good.size(); ++n) EXPECT_THROW(parse(good.substr(0, n)), Error) << "prefix " << n;
  expect_refused(good + "N", "trailing data");
  expect_refused(PickleBytes()
                     .op('X')
                     .raw("\xff\xff\xff\x7f"
                          "abc")
                     .stop(),
                 "truncated pickle");
  expect_refused(PickleBytes().op(0x8d).raw(std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8)).stop(),
                 "truncated pickle");
  // LONG4 with a 2 GB length, LONG1 of 9 bytes.
  expect_refused(PickleBytes().op(0x8b).raw("\xff\xff\xff\x7f").stop(), "does not fit in 64 bits");
  expect_refused(PickleBytes().op(0x8a).raw(std::string("\x09", 1) + std::string(9, '\x01')).stop(),
                 "does not fit in 64 bits");
  expect_refused(PickleBytes().op('.').raw("").stop().substr(0, 3), "stack underflow");
  expect_refused(PickleBytes().op('h').raw("\x05").stop(), "memo entry 5 was never stored");
  expect_refused(PickleBytes().op(0x80).raw("\x06").op('N').stop(), "unsupported pickle protocol 6");
  expect_refused(PickleBytes().op('}').op('u').stop(), "no MARK");
  expect_refused(PickleBytes().op(0xff).stop(), "opcode 0xff");
  expect_refused(PickleBytes().i(1).i(2).op('b').stop(), "BUILD on a int");
}

TEST(Pickle, EnforcesLimits) {
  PickleBytes deep;  // 300 nested lists: [[[...]]]
  for (int i = 0; i < 300; ++i) deep.op(']');
  for (int i = 0; i < 299; ++i) deep.op('a');
  expect_refused(deep.stop(), "nest deeper than 200");

  PickleBytes marks;
  for (int i = 0; i < 300; ++i) marks.op('(');
  expect_refused(marks.stop(), "MARKs nest deeper");

  PickleLimits small;
  small.max_values = 50;
  PickleBytes many;
  many.op(']').op('(');
  for (int i = 0; i < 60; ++i) many.op('N');
  many.op('e');
  expect_refused(many.stop(), "more than 50 values", small);

  small = {};
  small.max_container = 10;
  expect_refused(many.stop(), "past 10 items", small);

  small = {};
  small.max_memo = 3;
  PickleBytes memo;
  for (int i = 0; i < 5; ++i) memo.op('N').put(i).op('0');
  expect_refused(memo.op('N').stop(), "memo grows past 3", small);

  small = {};
  small.max_bytes = 1000;
  PickleBytes big;
  big.str(std::string(2000, 'x'));
  expect_refused(big.stop(), "allocates more than 1000 bytes", small);
}

TEST(Pickle, DescribesValuesForMessages) {
  Pickle r = parse(read_bytes(fixture_dir() + "/values_p2.pkl"));
  EXPECT_EQ(describe(r.root()), "dict (7 entries)");
  EXPECT_EQ(describe(r.root()->get("a")), "list (10 items)");
  EXPECT_EQ(describe(r.root()->get("missing")), "nothing");
  EXPECT_EQ(dtype_size(DType::BFloat16), 2u);
  EXPECT_EQ(dtype_of_storage_class("torch.LongStorage"), DType::Int64);
  EXPECT_FALSE(dtype_of_storage_class("torch.Storage").has_value());
}

}  // namespace
}  // namespace yq::model::pickle
