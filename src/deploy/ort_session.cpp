#include "deploy/ort_session.h"

#include <onnx/onnx_pb.h>
#include <stdlib.h>
#include <torch/torch.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "eval/validator.h"
#include "model/onnx_import.h"

namespace yq::deploy {

namespace {

// Seconds to wait for the child to load a model, and for one inference.
constexpr double kLoadTimeoutS = 300;
constexpr double kRunTimeoutS = 600;

std::vector<int64_t> parse_dims(const std::string& text) {
  std::vector<int64_t> dims;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    YQ_CHECK(!item.empty() && item.find_first_not_of("0123456789") == std::string::npos, "bad dims '{}'",
             text);
    dims.push_back(std::stoll(item));
  }
  YQ_CHECK(!dims.empty(), "no dims in '{}'", text);
  return dims;
}

std::string join_dims(const std::vector<int64_t>& dims) {
  std::string s;
  for (int64_t d : dims) s += (s.empty() ? "" : ",") + std::to_string(d);
  return s;
}

int64_t dim_of(const onnx::ValueInfoProto& v, int i) {
  const auto& shape = v.type().tensor_type().shape();
  return i < shape.dim_size() && shape.dim(i).has_dim_value() ? shape.dim(i).dim_value() : 0;
}

// "[256, 320]" or "256" -> (h, w); (0, 0) when unreadable.
std::pair<int64_t, int64_t> parse_imgsz(const std::string& text) {
  std::vector<int64_t> v;
  std::string digits;
  for (char c : text + ",") {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits += c;
    } else if (!digits.empty()) {
      v.push_back(std::stoll(digits));
      digits.clear();
    }
  }
  if (v.size() == 1) return {v[0], v[0]};
  if (v.size() == 2) return {v[0], v[1]};
  return {0, 0};
}

}  // namespace

fs::path find_ort_dir(const std::string& given, std::string& why_not) {
  std::vector<fs::path> candidates;
  if (!given.empty()) {
    candidates.push_back(given);
  } else {
    if (const char* s = std::getenv("YOLOQAT_SOURCE_DIR"))
      candidates.push_back(fs::path(s) / "tools" / "ort");
    fs::path d = fs::path(self_executable()).parent_path();
    for (int up = 0; up < 5 && !d.empty(); ++up, d = d.parent_path()) {
      candidates.push_back(d / "tools" / "ort");
      if (d == d.root_path()) break;
    }
  }
  fs::path dir;
  for (const auto& c : candidates)
    if (fs::exists(c / "serve.mjs") && fs::exists(c / "bench.mjs")) {
      dir = c;
      break;
    }
  if (dir.empty()) {
    if (given.empty())
      why_not = "tools/ort (serve.mjs, bench.mjs) not found (give ort_dir= or set YOLOQAT_SOURCE_DIR)";
    else
      why_not = "ort_dir=" + given + " has no " +
                (fs::exists(fs::path(given) / "bench.mjs") ? "serve.mjs" : "bench.mjs");
    return {};
  }
  if (!fs::exists(dir / "node_modules" / "onnxruntime-node" / "package.json")) {
    why_not =
        "onnxruntime-node is not installed in " + (dir / "node_modules").string() + " (run scripts/setup)";
    return {};
  }
  try {
    if (run_process({"node", "--version"}).exit_code != 0) {
      why_not = "`node --version` failed";
      return {};
    }
  } catch (const std::exception&) {
    why_not = "node is not installed (PATH has no `node`)";
    return {};
  }
  return dir;
}

OnnxModelInfo read_onnx_info(const fs::path& model) {
  return with_context("while reading ONNX model " + model.string(), [&] {
    onnx::ModelProto mp;
    {
      const std::string bytes = read_text(model);
      YQ_CHECK(mp.ParseFromString(bytes), "not an ONNX model (protobuf parse failed)");
    }
    const auto& g = mp.graph();
    // Initializers may be listed as inputs too (old exporters): the first input that is not one.
    std::map<std::string, bool> inits;
    for (const auto& t : g.initializer()) inits[t.name()] = true;
    const onnx::ValueInfoProto* in = nullptr;
    for (const auto& v : g.input())
      if (!inits.count(v.name())) {
        in = &v;
        break;
      }
    YQ_CHECK(in != nullptr && g.output_size() >= 1, "the graph has no input or no output");
    const onnx::ValueInfoProto* out = &g.output(0);
    for (const auto& o : g.output())
      if (o.name() == "output0") out = &o;
    YQ_CHECK(in->type().tensor_type().shape().dim_size() == 4, "input {} is not [N, 3, H, W]", in->name());
    YQ_CHECK(dim_of(*in, 1) == 3 || dim_of(*in, 1) == 0, "input {} has {} channels, 3 expected", in->name(),
             dim_of(*in, 1));

    OnnxModelInfo info;
    info.input = in->name();
    info.output = out->name();
    info.batch = dim_of(*in, 0);
    info.height = dim_of(*in, 2);
    info.width = dim_of(*in, 3);
    std::map<std::string, std::string> meta;
    for (const auto& p : mp.metadata_props()) meta[p.key()] = p.value();
    if (meta.count("imgsz") && (info.height == 0 || info.width == 0)) {
      const auto [h, w] = parse_imgsz(meta["imgsz"]);
      if (info.height == 0) info.height = h;
      if (info.width == 0) info.width = w;
    }
    if (meta.count("stride")) {
      const auto [s, unused] = parse_imgsz(meta["stride"]);
      (void)unused;
      if (s > 0) info.stride = s;
    }
    if (meta.count("names")) info.names = model::parse_python_names(meta["names"]);
    info.nc = dim_of(*out, 1) > 4 ? dim_of(*out, 1) - 4 : int64_t(info.names.size());
    for (const auto& n : g.node())
      if (n.op_type() == "QuantizeLinear" || n.op_type() == "DequantizeLinear") {
        info.qdq = true;
        break;
      }
    if (meta.count("quantization_target")) info.target = meta["quantization_target"];
    if (info.qdq) {
      info.pair_bound = 2 * 255 * 128;
      if (meta.count("int8_pair_bound")) {
        try {
          info.pair_bound = std::stoll(meta["int8_pair_bound"]);
        } catch (const std::exception&) {
          throw Error(
              fmt::format("metadata int8_pair_bound='{}' is not an integer", meta["int8_pair_bound"]));
        }
      }
    }
    return info;
  });
}

OrtSession::OrtSession(const fs::path& ort_dir, const fs::path& model, int threads) : model_(model) {
  const fs::path script = ort_dir / "serve.mjs";
  YQ_CHECK(fs::is_regular_file(script), "{}: no such file (ONNX Runtime's server script)", script.string());
  YQ_CHECK(fs::is_regular_file(model), "{}: no such file", model.string());
  // A private folder for the tensors (the protocol's paths must not contain spaces).
  std::string tmpl = (fs::temp_directory_path() / "yoloqat_ort_XXXXXX").string();
  YQ_CHECK(tmpl.find_first_of(" \t\n") == std::string::npos,
           "the temporary folder {} has a space in its path (set TMPDIR)", tmpl);
  YQ_CHECK(::mkdtemp(tmpl.data()) != nullptr, "cannot create a temporary folder {}: {}", tmpl,
           std::strerror(errno));
  dir_ = tmpl;
  try {
    child_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        "node", script.string(), fs::absolute(model).string(), std::to_string(std::max(1, threads))});
    const std::string line = child_->read_line(kLoadTimeoutS);
    const auto j = nlohmann::json::parse(line, nullptr, false);
    YQ_CHECK(!j.is_discarded() && j.is_object(), "unexpected first line from serve.mjs: {}", line);
    YQ_CHECK(j.value("ready", false), "ONNX Runtime cannot load {}: {}", model.string(),
             j.value("error", std::string("(no message)")));
    input_ = j.value("input", std::string());
    output_ = j.value("output", std::string());
    version_ = j.value("ort", std::string());
  } catch (...) {
    child_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    throw;
  }
}

OrtSession::~OrtSession() {
  if (child_ && child_->running()) {
    try {
      child_->write_line("quit");
    } catch (...) {
    }
  }
  child_.reset();  // waits for the child (killing it if it hangs)
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::vector<float> OrtSession::run(const float* input, const std::vector<int64_t>& dims,
                                   std::vector<int64_t>& out_dims) {
  YQ_CHECK(child_ && child_->running(), "the ONNX Runtime session of {} has ended", model_.string());
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  const fs::path in = dir_ / "in.bin", out = dir_ / "out.bin";
  atomic_write(in, std::string(reinterpret_cast<const char*>(input), size_t(count) * sizeof(float)));
  child_->write_line("run " + in.string() + " " + join_dims(dims) + " " + out.string());
  const std::string reply = child_->read_line(kRunTimeoutS);
  YQ_CHECK(reply.rfind("error ", 0) != 0, "ONNX Runtime on {} with input [{}]: {}", model_.string(),
           join_dims(dims), reply.substr(6));
  std::stringstream ss(reply);
  std::string ok, dims_text;
  double ms = 0;
  YQ_CHECK(ss >> ok >> dims_text >> ms && ok == "ok", "unexpected reply from serve.mjs: {}", reply);
  out_dims = parse_dims(dims_text);
  const std::string bytes = read_text(out);
  int64_t n = 1;
  for (int64_t d : out_dims) n *= d;
  YQ_CHECK(int64_t(bytes.size()) == n * int64_t(sizeof(float)), "{}: {} bytes for output dims [{}]",
           out.string(), bytes.size(), dims_text);
  std::vector<float> values(static_cast<size_t>(n));
  std::memcpy(values.data(), bytes.data(), bytes.size());
  last_ms_ = ms;
  ++runs_;
  return values;
}

eval::Detector ort_detector(std::shared_ptr<OrtSession> session, int64_t model_batch) {
  eval::Detector det;
  det.forward = [session, model_batch](const torch::Tensor& images) {
    YQ_CHECK(images.dim() == 4, "images of shape {} given, [B, 3, H, W] expected",
             join_dims(images.sizes().vec()));
    const auto x = images.detach().to(torch::kFloat32).contiguous();
    const int64_t b = x.size(0);
    const int64_t chunk = model_batch > 0 ? model_batch : b;
    std::vector<torch::Tensor> outs;
    for (int64_t i = 0; i < b; i += chunk) {
      const int64_t n = std::min(chunk, b - i);
      auto part = x.narrow(0, i, n);
      if (n < chunk) {  // a fixed-batch model: pad the last chunk
        auto padded = torch::zeros({chunk, x.size(1), x.size(2), x.size(3)}, torch::kFloat32);
        padded.narrow(0, 0, n).copy_(part);
        part = padded;
      }
      part = part.contiguous();
      std::vector<int64_t> out_dims;
      auto values = session->run(part.data_ptr<float>(), part.sizes().vec(), out_dims);
      auto y = torch::from_blob(values.data(), out_dims, torch::kFloat32).clone();
      YQ_CHECK(y.dim() == 3 && y.size(0) == chunk, "{}: output [{}] for a batch of {}",
               session->model().string(), join_dims(y.sizes().vec()), chunk);
      outs.push_back(y.narrow(0, 0, n));
    }
    return outs.size() == 1 ? outs[0] : torch::cat(outs, 0);
  };
  return det;
}

}  // namespace yq::deploy
