// Times an ONNX model in ONNX Runtime (CPU) for `yoloqat benchmark onnx=...`: one session with
// intraOpNumThreads = THREADS, WARMUP untimed runs, then RUNS timed runs (or fewer once MAX_SECONDS of
// timed runs have passed, at least 3) on a fixed pseudo-random input in 0..1 of shape BATCH x 3 x IMGSZ x IMGSZ.
// Times are of session.run alone (inference; no image decoding or NMS).
//
// Usage: node bench.mjs MODEL.onnx BATCH IMGSZ THREADS WARMUP RUNS [MAX_SECONDS]
// Prints one JSON line: {"model", "input", "dims", "threads", "warmup", "times_ms": [...],
// "p50_ms", "mean_ms", "peak_rss_mb"} (peak_rss_mb: VmHWM of this node process, node included).
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [model, batchText, imgszText, threadsText, warmupText, runsText, maxSecondsText = '0'] =
  process.argv.slice(2);
if (!model || !runsText) {
  console.error('usage: node bench.mjs MODEL.onnx BATCH IMGSZ THREADS WARMUP RUNS [MAX_SECONDS]');
  process.exit(2);
}
const batch = Number(batchText), imgsz = Number(imgszText), threads = Number(threadsText);
const warmup = Number(warmupText), runs = Number(runsText), maxSeconds = Number(maxSecondsText);
const dims = [batch, 3, imgsz, imgsz];
const count = dims.reduce((a, b) => a * b, 1);
const data = new Float32Array(count);
let s = 0x2545f491;  // xorshift32: the same input on every run and machine
for (let i = 0; i < count; ++i) {
  s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
  data[i] = s / 4294967296;
}

// Errors (a shape the model does not take, an unreadable file) as one line on stderr, exit code 1.
// onnxruntime-node throws some of them from a callback, not through the awaited promise.
const fail = (e) => {
  console.error(`onnxruntime: ${String(e && e.message ? e.message : e).replace(/\s+/g, ' ').trim()}`);
  process.exit(1);
};
process.on('unhandledRejection', fail);
process.on('uncaughtException', fail);
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  executionProviders: ['cpu'],
});
const inputName = session.inputNames[0];
const feeds = { [inputName]: new ort.Tensor('float32', data, dims) };
for (let k = 0; k < warmup; ++k) await session.run(feeds);
const times = [];
const start = process.hrtime.bigint();
while (times.length < runs) {
  const t0 = process.hrtime.bigint();
  await session.run(feeds);
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  if (maxSeconds > 0 && times.length >= Math.min(3, runs) && elapsed >= maxSeconds) break;
}
// VmHWM of this process. Not getrusage's maxRSS: a child started with vfork + exec (posix_spawn) inherits
// its parent's peak there.
function peakRssMb() {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch (e) { /* not Linux */ }
  return process.resourceUsage().maxRSS / 1024;
}
const sorted = [...times].sort((a, b) => a - b);
const h = (sorted.length - 1) * 0.5, lo = Math.floor(h);
const p50 = lo + 1 < sorted.length ? sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]) : sorted[lo];
console.log(JSON.stringify({
  model, input: inputName, dims, threads, warmup, times_ms: times, p50_ms: p50,
  mean_ms: times.reduce((a, b) => a + b, 0) / times.length,
  peak_rss_mb: peakRssMb(),
}));
