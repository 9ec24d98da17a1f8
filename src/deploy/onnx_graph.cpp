#include "deploy/onnx_graph.h"

#include <fmt/format.h>
#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <cstring>
#include <fstream>

#include "core/error.h"

namespace yq::deploy {

// ---------------------------------------------------------------- OnnxAttr

OnnxAttr::OnnxAttr(const std::string& name, int value) : OnnxAttr(name, int64_t(value)) {}

OnnxAttr::OnnxAttr(const std::string& name, int64_t value) {
  proto_.set_name(name);
  proto_.set_type(onnx::AttributeProto::INT);
  proto_.set_i(value);
}

OnnxAttr::OnnxAttr(const std::string& name, float value) {
  proto_.set_name(name);
  proto_.set_type(onnx::AttributeProto::FLOAT);
  proto_.set_f(value);
}

OnnxAttr::OnnxAttr(const std::string& name, const char* value) : OnnxAttr(name, std::string(value)) {}

OnnxAttr::OnnxAttr(const std::string& name, const std::string& value) {
  proto_.set_name(name);
  proto_.set_type(onnx::AttributeProto::STRING);
  proto_.set_s(value);
}

OnnxAttr::OnnxAttr(const std::string& name, const std::vector<int64_t>& values) {
  proto_.set_name(name);
  proto_.set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) proto_.add_ints(v);
}

// ---------------------------------------------------------------- OnnxGraph

namespace {

void fill_value_info(onnx::ValueInfoProto* v, const std::string& name, const std::vector<OnnxDim>& dims,
                     int32_t elem_type) {
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem_type);
  auto* shape = tt->mutable_shape();
  for (const auto& d : dims) {
    auto* dim = shape->add_dim();
    if (d.param.empty())
      dim->set_dim_value(d.value);
    else
      dim->set_dim_param(d.param);
  }
}

}  // namespace

OnnxGraph::OnnxGraph(const std::string& graph_name, int64_t opset) : opset_(opset) {
  YQ_CHECK_USAGE(opset >= 13 && opset <= 17, "ONNX opset {} is not supported (13 to 17)", opset);
  // IR version 8 is what ONNX 1.12 writes and what opset 17 needs; readers of IR 7 (opset 13) also
  // accept it when they know opset 13 (ONNX Runtime 1.10+).
  model_.set_ir_version(onnx::IR_VERSION);
  auto* op = model_.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  graph_ = model_.mutable_graph();
  graph_->set_name(graph_name);
}

std::string OnnxGraph::unique_name(const std::string& base) {
  std::string name = base;
  for (int i = 1; used_.count(name); ++i) name = fmt::format("{}_{}", base, i);
  used_.insert(name);
  return name;
}

void OnnxGraph::add_input(const std::string& name, const std::vector<OnnxDim>& dims, int32_t elem_type) {
  YQ_ASSERT(!used_.count(name));
  used_.insert(name);
  fill_value_info(graph_->add_input(), name, dims, elem_type);
}

void OnnxGraph::add_output(const std::string& name, const std::vector<OnnxDim>& dims, int32_t elem_type) {
  // The name is the output of a node already added (and reserved by it).
  fill_value_info(graph_->add_output(), name, dims, elem_type);
}

std::string OnnxGraph::add_initializer(const std::string& name, const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU);
  if (c.scalar_type() == torch::kFloat64) c = c.to(torch::kFloat32);
  c = c.contiguous();
  int32_t type = 0;
  switch (c.scalar_type()) {
    case torch::kFloat32:
      type = onnx::TensorProto::FLOAT;
      break;
    case torch::kInt64:
      type = onnx::TensorProto::INT64;
      break;
    case torch::kInt32:
      type = onnx::TensorProto::INT32;
      break;
    case torch::kInt8:
      type = onnx::TensorProto::INT8;
      break;
    case torch::kUInt8:
      type = onnx::TensorProto::UINT8;
      break;
    default:
      throw Error(fmt::format("ONNX initializer {}: dtype {} is not supported", name,
                              c10::toString(c.scalar_type())));
  }
  const std::string used = unique_name(name);
  auto* init = graph_->add_initializer();
  init->set_name(used);
  init->set_data_type(type);
  for (int64_t d : c.sizes()) init->add_dims(d);
  // raw_data is little-endian, as this host (x86-64, ARM64) stores it.
  init->set_raw_data(std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size()));
  return used;
}

std::string OnnxGraph::add_int64s(const std::string& name, const std::vector<int64_t>& values) {
  return add_initializer(name, torch::tensor(values, torch::kInt64));
}

std::string OnnxGraph::add_floats(const std::string& name, const std::vector<float>& values,
                                  const std::vector<int64_t>& shape) {
  return add_initializer(name, torch::tensor(values, torch::kFloat32).reshape(shape));
}

onnx::NodeProto& OnnxGraph::add_node(const std::string& op_type, const std::vector<std::string>& inputs,
                                     const std::vector<std::string>& outputs, const std::string& name,
                                     std::initializer_list<OnnxAttr> attrs) {
  auto* n = graph_->add_node();
  n->set_op_type(op_type);
  n->set_name(unique_name(name));
  for (const auto& i : inputs) n->add_input(i);
  for (const auto& o : outputs) n->add_output(o);
  for (const auto& a : attrs) *n->add_attribute() = a.proto();
  return *n;
}

std::string OnnxGraph::op(const std::string& op_type, const std::vector<std::string>& inputs,
                          const std::string& name, std::initializer_list<OnnxAttr> attrs) {
  const std::string out = unique_name(name + "_out");
  add_node(op_type, inputs, {out}, name, attrs);
  return out;
}

void OnnxGraph::set_metadata(const std::string& key, const std::string& value) {
  for (auto& p : *model_.mutable_metadata_props()) {
    if (p.key() == key) {
      p.set_value(value);
      return;
    }
  }
  auto* p = model_.add_metadata_props();
  p->set_key(key);
  p->set_value(value);
}

void OnnxGraph::set_producer(const std::string& name, const std::string& version) {
  model_.set_producer_name(name);
  model_.set_producer_version(version);
}

void OnnxGraph::set_doc(const std::string& doc) {
  model_.set_doc_string(doc);
}

onnx::ModelProto OnnxGraph::checked() const {
  return check_onnx(model_);
}

// ---------------------------------------------------------------- checks and files

std::string onnx_shape_text(const onnx::ValueInfoProto& v) {
  std::string s;
  if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return "?";
  for (const auto& d : v.type().tensor_type().shape().dim()) {
    if (!s.empty()) s += " x ";
    s += d.has_dim_value() ? std::to_string(d.dim_value()) : d.has_dim_param() ? d.dim_param() : "?";
  }
  return s;
}

onnx::ModelProto check_onnx(const onnx::ModelProto& model) {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw Error(fmt::format("the ONNX checker refused the model: {}", e.what()));
  }
  onnx::ModelProto inferred = model;
  try {
    // check_type, error_mode 1 (node-level inference errors throw), no data propagation.
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    throw Error(fmt::format("ONNX shape inference failed: {}", e.what()));
  }
  return inferred;
}

int64_t write_onnx(const onnx::ModelProto& model, const fs::path& path) {
  check_onnx(model);
  std::string bytes;
  YQ_CHECK(model.SerializeToString(&bytes), "cannot serialize the ONNX model for {}", path.string());
  with_context("while writing " + path.string(), [&] { atomic_write(path, bytes); });
  return static_cast<int64_t>(bytes.size());
}

onnx::ModelProto read_onnx(const fs::path& path) {
  const std::string bytes = read_text(path);
  onnx::ModelProto m;
  YQ_CHECK(m.ParseFromString(bytes), "{} is not an ONNX model (protobuf parse failed)", path.string());
  return m;
}

}  // namespace yq::deploy
