// Times ONNX models in ONNX Runtime (CPU) on a random image and, optionally, writes the graph ONNX
// Runtime actually runs (after its optimizations) to see which nodes it fused (QLinearConv, ...).
// A measuring tool for the QDQ export (yoloqat export format=onnx-qdq); not a test.
//
// Usage: node qdq_probe.mjs MODEL.onnx [--runs N] [--warmup N] [--threads N] [--optimized OUT.onnx]
//   The input shape is read from the model's first input (a symbolic batch counts as 1).
// Prints one JSON line per model: {"model", "threads", "runs", "median_ms", "min_ms", "max_ms",
//   "p90_ms", "optimized"}.
import * as ort from 'onnxruntime-node';

const args = process.argv.slice(2);
const opt = { runs: 20, warmup: 3, threads: 2, optimized: '' };
const models = [];
for (let i = 0; i < args.length; ++i) {
  const a = args[i];
  if (a === '--runs') opt.runs = Number(args[++i]);
  else if (a === '--warmup') opt.warmup = Number(args[++i]);
  else if (a === '--threads') opt.threads = Number(args[++i]);
  else if (a === '--optimized') opt.optimized = args[++i];
  else models.push(a);
}
if (models.length === 0 || !(opt.runs > 0)) {
  console.error('usage: node qdq_probe.mjs MODEL.onnx [MODEL2.onnx ...] [--runs N] [--warmup N] [--threads N] ' +
                '[--optimized OUT.onnx]');
  process.exit(2);
}

// Deterministic pseudo-random pixels on the uint8 grid (x / 255), so runs are comparable.
function image(dims) {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; ++i) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = ((s >>> 16) & 255) / 255;
  }
  return data;
}

for (const model of models) {
  const options = {
    intraOpNumThreads: opt.threads,
    interOpNumThreads: 1,
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
  };
  if (opt.optimized && models.length === 1) options.optimizedModelFilePath = opt.optimized;
  const session = await ort.InferenceSession.create(model, options);
  const meta = session.inputMetadata ? session.inputMetadata[0] : undefined;
  let dims = meta && meta.shape ? meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1)) : undefined;
  if (!dims) {
    console.error(`${model}: cannot read the input shape`);
    process.exit(1);
  }
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', image(dims), dims) };
  for (let i = 0; i < opt.warmup; ++i) await session.run(feeds);
  const ms = [];
  for (let i = 0; i < opt.runs; ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const q = (p) => ms[Math.min(ms.length - 1, Math.floor(p * (ms.length - 1) + 0.5))];
  console.log(JSON.stringify({
    model, threads: opt.threads, runs: opt.runs, dims,
    median_ms: q(0.5), min_ms: ms[0], max_ms: ms[ms.length - 1], p90_ms: q(0.9),
    optimized: options.optimizedModelFilePath || null,
  }));
}
