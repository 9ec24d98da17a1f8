// A true int8 YOLOv8 (DESIGN.md "Int8 and export"; `yoloqat convert`): every conv and junction the
// qconfig quantized runs on LibTorch's quantized kernels (deploy/int8_ops.h), the rest in float.
//
// convert() reads a prepared (PTQ or QAT) model: each ConvBnAct's BN-folded weight becomes per-channel
// int8 codes with weight_fq's scales, its conv writes pre_fq's grid and a SiLU table maps that onto
// act_fq's grid; the head's final 1x1 convs write their act_fq grid and are dequantized before the float
// DFL / decoding; adds and concats take their out_fq grid; the image is quantized with input_fq's. The
// quantizers' enable switches are ignored: convert uses their qparams as they are.
//
// Values between layers are quint8 tensors (channels-last) or float tensors. A layer runs in int8 when
// its input is quantized and it has the quantizers that fix its output grid; otherwise it runs the
// fake-quant model's math in float (dequantized int8 weights, float conv, then quantize to its output
// grid when it has one). So a layer the qconfig kept float runs between a dequantize and a quantize, and
// the int8 model computes what the fake-quant model computes, within rounding.
//
// File format (extension .int8): the magic "YOLOQAT-INT8", a format version (uint32 LE), the payload
// length (uint64 LE) and its CRC-32 (uint32 LE), then the payload: torch::pickle_save of a tuple
// (header JSON text, {name: tensor}). The header holds the ModelSpec, class names, engine, input grid,
// each conv's stride / padding / grids and each junction's grid; the tensors are each conv's weight
// (int8 codes, or float where the weight stays float), per-channel scales (float32) and bias (float32).
// load() rebuilds the layer table from the spec and repacks the weights; it needs no quantizer.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/fs.h"
#include "model/yolov8.h"
#include "quant/target.h"

namespace yq::deploy {

inline constexpr const char* kInt8Extension = ".int8";
inline constexpr const char* kInt8Format = "yoloqat-int8";
inline constexpr int kInt8Version = 1;

struct ConvertOptions {
  std::string engine = "onednn";  // quantized engine: onednn (x86) or qnnpack (ARM)
};

// How each layer of a converted model runs.
struct Int8LayerReport {
  std::string name;    // "model.2.m.0.cv1", "model.11", "model.22.cv3.0.2", "input"
  std::string kind;    // conv, head, add, concat, input
  bool int8 = false;   // int8 weights (convs) / quantized output (junctions, input)
  std::string detail;  // grids, or why it stays float
};

struct Int8Graph;  // the layers (int8_model.cpp)

class Int8Model {
 public:
  Int8Model(Int8Model&&) noexcept;
  Int8Model& operator=(Int8Model&&) noexcept;
  Int8Model(const Int8Model&) = delete;
  Int8Model& operator=(const Int8Model&) = delete;
  ~Int8Model();

  // x [B, 3, H, W] float 0..1, H and W multiples of the largest stride. Raw head outputs per level
  // (float): [B, 64 + nc, H / s_i, W / s_i], as YoloV8Impl::forward_raw.
  std::vector<at::Tensor> forward_raw(const at::Tensor& x);
  // [B, 4 + nc, A]: cx, cy, w, h in input pixels, then sigmoid class scores (YoloV8Impl::forward).
  at::Tensor forward(const at::Tensor& x);
  // The float DFL / box decoding of raw outputs (the math of Detect::decode).
  at::Tensor decode(const std::vector<at::Tensor>& raw) const;

  // One file (format above), written atomically.
  void save(const fs::path& path) const;
  // Throws Error naming the file when it is not an int8 model, is truncated or corrupt, or was written
  // by a newer format version.
  static Int8Model load(const fs::path& path);
  // True when `path` starts with the int8 magic (cheap; reads 16 bytes).
  static bool is_int8_file(const fs::path& path);

  const model::ModelSpec& spec() const;
  const std::vector<std::string>& names() const;
  const std::vector<int64_t>& strides() const;
  int64_t nc() const;
  const std::string& engine() const;
  // Every quantizable layer, in model order.
  std::vector<Int8LayerReport> report() const;
  // Bytes of the stored weights, scales and biases.
  int64_t weight_bytes() const;
  // 2 x a_max x |w_max| over the int8 convs (quant/target.h): a_max the highest code of the grids convs
  // read (the image, SiLU outputs, adds and concats), w_max the largest |stored weight code|.
  int64_t pair_bound() const;
  // The deployment target recorded at convert ("" for files of before targets).
  std::string target() const;
  // Whether the int8 convs compute exactly on `cpu` with this model's engine.
  quant::Exactness exactness(const CpuFeatures& cpu) const;
  // Free-form provenance stored in the file (source checkpoint, kind); convert() leaves it empty.
  nlohmann::json& meta();
  const nlohmann::json& meta() const;

 private:
  explicit Int8Model(std::unique_ptr<Int8Graph> g);
  friend Int8Model convert(model::YoloV8Impl& prepared, const ConvertOptions& opt);
  std::unique_ptr<Int8Graph> g_;
};

// Builds the int8 model of a prepared (quant::prepare'd, calibrated or QAT-trained) model. Throws
// UsageError when the model has no quantizers, or an activation scheme an 8-bit runtime cannot hold.
Int8Model convert(model::YoloV8Impl& prepared, const ConvertOptions& opt = {});

}  // namespace yq::deploy
