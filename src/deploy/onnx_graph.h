// A small builder of ONNX models on libonnx's protobuf classes (onnx::ModelProto): named nodes,
// initializers from LibTorch tensors, graph inputs/outputs with fixed or symbolic dimensions, and
// metadata; then onnx's checker and strict shape inference before the bytes are written.
//
// The exporters (fp32 now; QDQ and TensorRT flavours later) describe their graph through this API
// only: a QDQ export inserts QuantizeLinear/DequantizeLinear pairs as ordinary add_node calls around
// the tensor names it gets back, with scales and zero points from add_initializer.
#pragma once

#include <onnx/onnx_pb.h>
#include <torch/torch.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/fs.h"

namespace yq::deploy {

// One node attribute. Built implicitly from {name, value}: {"axis", 1}, {"mode", "nearest"},
// {"pads", std::vector<int64_t>{2, 2, 2, 2}}, {"alpha", 0.5f}.
class OnnxAttr {
 public:
  OnnxAttr(const std::string& name, int value);
  OnnxAttr(const std::string& name, int64_t value);
  OnnxAttr(const std::string& name, float value);
  OnnxAttr(const std::string& name, const char* value);
  OnnxAttr(const std::string& name, const std::string& value);
  OnnxAttr(const std::string& name, const std::vector<int64_t>& values);
  const onnx::AttributeProto& proto() const { return proto_; }

 private:
  onnx::AttributeProto proto_;
};

// A dimension of a graph input or output: a size, or a symbol ("batch") for a dynamic one.
struct OnnxDim {
  OnnxDim(int64_t v) : value(v) {}                                  // NOLINT: implicit on purpose
  OnnxDim(const char* symbol) : value(-1), param(symbol) {}         // NOLINT
  OnnxDim(const std::string& symbol) : value(-1), param(symbol) {}  // NOLINT
  int64_t value;
  std::string param;  // non-empty: symbolic
};

class OnnxGraph {
 public:
  // `opset`: the default-domain opset the nodes are written for (13 or later).
  OnnxGraph(const std::string& graph_name, int64_t opset);
  OnnxGraph(const OnnxGraph&) = delete;
  OnnxGraph& operator=(const OnnxGraph&) = delete;

  // A tensor or node name not used yet: `base`, else base_1, base_2, ...; it is then reserved.
  std::string unique_name(const std::string& base);

  // Graph inputs and outputs (element type onnx::TensorProto::FLOAT, INT64, ...).
  void add_input(const std::string& name, const std::vector<OnnxDim>& dims,
                 int32_t elem_type = onnx::TensorProto::FLOAT);
  void add_output(const std::string& name, const std::vector<OnnxDim>& dims,
                  int32_t elem_type = onnx::TensorProto::FLOAT);

  // An initializer holding `t` (float32, float64 -> float32, int64, int32, int8 or uint8; copied,
  // C order). The name is made unique from `name`; the name used is returned.
  std::string add_initializer(const std::string& name, const torch::Tensor& t);
  // A 1-D int64 initializer (shapes, axes, split sizes).
  std::string add_int64s(const std::string& name, const std::vector<int64_t>& values);
  // A float32 initializer of the given shape (scalars: shape {}).
  std::string add_floats(const std::string& name, const std::vector<float>& values,
                         const std::vector<int64_t>& shape);

  // A node reading `inputs` ("" = an omitted optional input) and writing `outputs` (names used as
  // given: make them with unique_name). `name` is made unique. Returns the node for further edits.
  onnx::NodeProto& add_node(const std::string& op_type, const std::vector<std::string>& inputs,
                            const std::vector<std::string>& outputs, const std::string& name,
                            std::initializer_list<OnnxAttr> attrs = {});
  // The common one-output case: the output is named unique_name(name + "_out") and returned.
  std::string op(const std::string& op_type, const std::vector<std::string>& inputs, const std::string& name,
                 std::initializer_list<OnnxAttr> attrs = {});

  // Model metadata (metadata_props); a key set twice keeps the last value.
  void set_metadata(const std::string& key, const std::string& value);
  void set_producer(const std::string& name, const std::string& version);
  void set_doc(const std::string& doc);

  const onnx::ModelProto& model() const { return model_; }
  onnx::ModelProto& model() { return model_; }
  int64_t opset() const { return opset_; }

  // Runs onnx's checker and strict shape inference (declared output shapes must agree with the
  // inferred ones). Throws yq::Error with onnx's message. Returns the model with inferred value_info.
  onnx::ModelProto checked() const;

 private:
  onnx::ModelProto model_;
  onnx::GraphProto* graph_;
  int64_t opset_;
  std::unordered_set<std::string> used_;
};

// The shape of a graph input or output of `model` as text, symbols by name: "batch x 3 x 640 x 640".
std::string onnx_shape_text(const onnx::ValueInfoProto& v);

// Runs onnx's checker and strict shape inference on `model`; returns it with the inferred value_info.
// Throws yq::Error with onnx's message.
onnx::ModelProto check_onnx(const onnx::ModelProto& model);

// Checks (check_onnx) and writes `model` to `path` atomically. Returns its size.
int64_t write_onnx(const onnx::ModelProto& model, const fs::path& path);

// Reads and parses an .onnx file; errors name the file.
onnx::ModelProto read_onnx(const fs::path& path);

}  // namespace yq::deploy
