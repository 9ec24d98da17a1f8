// Int8 ONNX export of a quantized (calibrated or QAT) YoloV8 as a QDQ graph: the fp32 graph of
// deploy/onnx_export.h (same walk, same interface and metadata) with QuantizeLinear ->
// DequantizeLinear pairs where the model's quantizers are, and conv weights stored as int8 initializers
// read through a per-channel DequantizeLinear (axis 0, scale [C], zero point 0). BN is folded exactly
// as the fake-quant forward folds it, so DequantizeLinear(int8 weight) == the fake-quantized weight.
// The DFL / decode tail stays float. Opset 13 or later (per-channel DequantizeLinear).
//
// Two flavours:
//  - kOnnxRuntime (`export format=onnx-qdq`): a faithful copy of the fake-quant model. Q/DQ on the image
//    (input_fq), every conv output before SiLU (pre_fq), after SiLU (act_fq), every residual Add and
//    Concat output (out_fq) and every quantized head conv output; activations uint8 or int8 as the
//    quantizers' schemes say. Options add exact extra pairs that help ONNX Runtime fuse (see below).
//  - kTensorRt (`export format=tensorrt`): TensorRT's explicit quantization rules. Symmetric int8
//    activations with zero point 0 (an asymmetric quantizer's range [s (qmin - zp), s (qmax - zp)]
//    becomes scale max(|lo|, |hi|) / 127); Q/DQ on the tensors Conv and residual Add nodes read, with
//    the qparams of the tensor's own quantizer; each Concat input quantized with the Concat's shared
//    quantizer (so all inputs and the output share one scale); nothing between Conv and SiLU (TensorRT
//    fuses them; pre_fq is dropped); symmetric int8 per-channel weights (other weight schemes are a
//    UsageError). export_qdq writes README.md next to the file with the trtexec command line.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "core/fs.h"
#include "deploy/onnx_export.h"
#include "model/yolov8.h"

namespace yq::deploy {

enum class QdqFlavour {
  kOnnxRuntime,  // onnx-qdq
  kTensorRt,     // tensorrt
};

// "onnx-qdq" / "tensorrt".
std::string qdq_format_name(QdqFlavour flavour);

struct QdqExportOptions {
  OnnxExportOptions onnx;  // size, opset (13..17), dynamic batch, source
  QdqFlavour flavour = QdqFlavour::kOnnxRuntime;
  // kOnnxRuntime only. Exact additions (they quantize values already on that grid again):
  //  concat_input_qdq: Q/DQ with the Concat's shared qparams on every Concat input, so that every input
  //    of the Concat comes straight from a DequantizeLinear (ONNX Runtime's QDQ Concat rule);
  //  passthrough_qdq: Q/DQ with the input's qparams after Split, MaxPool and Resize, so that they sit
  //    between DQ and Q and ONNX Runtime runs them on int8.
  //  int32_bias: conv biases as int32 with DequantizeLinear (scale s_in * s_w per channel, zero point 0)
  //    instead of float; rounds each bias to that grid (an error of at most s_in * s_w / 2).
  bool concat_input_qdq = true;
  bool passthrough_qdq = true;
  bool int32_bias = false;
  // The deployment target of the quantized model (quant/target.h), written to the metadata
  // ("quantization_target") beside "int8_pair_bound"; "" = none recorded.
  std::string target;
};

struct QdqExportResult {
  OnnxExportResult onnx;          // bytes, nodes, initializers, anchors
  int64_t qdq_pairs = 0;          // activation QuantizeLinear -> DequantizeLinear pairs
  int64_t quantizer_pairs = 0;    // of which one per model quantizer place (the rest: exact extras)
  int64_t clips = 0;              // Clip nodes before QuantizeLinear (ranges narrower than 8 bits)
  int64_t weight_dq = 0;          // int8 weights read through DequantizeLinear
  int64_t bias_dq = 0;            // int32 biases read through DequantizeLinear
  int64_t int8_weight_bytes = 0;  // bytes of the int8 weight initializers
  int64_t made_symmetric = 0;     // kTensorRt: activation quantizers converted to symmetric
  int64_t dropped_pre = 0;        // kTensorRt: pre-SiLU quantizers left out (Conv + SiLU fused)
  int64_t subsumed = 0;           // kTensorRt: activation quantizers of tensors that only feed Concats (the
                                  // Concat's shared scale quantizes them instead)
};

// The QDQ graph of a prepared `model` with its current qparams (freeze or calibrate it first), not yet
// checked. Throws UsageError when the model has no quantizers ("calibrate or qat first") or, for
// kTensorRt, when a weight scheme is not symmetric int8. `stats` (optional) receives the counts.
onnx::ModelProto build_qdq_model(model::YoloV8Impl& model, const QdqExportOptions& options,
                                 QdqExportResult* stats = nullptr);

// Builds, checks (checker + shape inference) and writes atomically; kTensorRt also writes README.md
// (tensorrt_readme) into the same folder.
QdqExportResult export_qdq(model::YoloV8Impl& model, const fs::path& path, const QdqExportOptions& options);

// The TensorRT note for the export `onnx_file`: the trtexec command line (explicit quantization:
// --int8 without a calibration cache) and what the graph contains.
std::string tensorrt_readme(const fs::path& onnx_file, const QdqExportOptions& options,
                            const QdqExportResult& result);

// The symmetric int8 scale (zero point 0, [-127, 127]) that covers the range of an affine quantizer:
// max(|s (qmin - zp)|, |s (qmax - zp)|) / 127.
float symmetric_int8_scale(float scale, int64_t zero_point, int64_t quant_min, int64_t quant_max);

}  // namespace yq::deploy
