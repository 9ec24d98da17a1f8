// Keeps one ONNX model open in ONNX Runtime (CPU) and runs it on request, so that a client can run
// many inferences without starting node each time (~0.4 s). The C++ end is yq::deploy::OrtSession
// (src/deploy/ort_session.h); tensors travel as raw float32 files (little-endian, C order) in a
// folder of the client's, requests and replies as text lines.
//
// Usage: node serve.mjs MODEL.onnx [THREADS]
// Protocol (one line per message; stdout carries nothing else, messages for people go to stderr):
//   start   -> {"ready": true, "input": NAME, "output": NAME, "ort": VERSION}  (JSON, one line)
//              or, when the model cannot be loaded, {"ready": false, "error": MESSAGE} and exit code 1
//   request <- run IN.bin D0,D1,... OUT.bin
//              runs the model's first input on IN.bin (shape D0,D1,...), writes its first output to OUT.bin
//   reply   -> ok E0,E1,... MS          the output's dims and the inference time in milliseconds
//              error MESSAGE             (one line; the server keeps serving)
//   request <- quit  (or end of input)  -> the server exits with code 0
// Paths must not contain spaces (the client makes them).
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import * as ort from 'onnxruntime-node';

const [model, threads = '1'] = process.argv.slice(2);
if (!model) {
  console.error('usage: node serve.mjs MODEL.onnx [THREADS]');
  process.exit(2);
}
const reply = (text) => process.stdout.write(text.replace(/[\r\n]+/g, ' ') + '\n');

let session;
try {
  session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads),
    interOpNumThreads: 1,
    executionProviders: ['cpu'],
  });
} catch (e) {
  console.error(`cannot load ${model}: ${e.message}`);
  reply(JSON.stringify({ ready: false, error: String(e.message) }));
  process.exit(1);
}
const inputName = session.inputNames[0];
const outputName = session.outputNames[0];
reply(JSON.stringify({ ready: true, input: inputName, output: outputName, ort: ort.env.versions?.common ?? '' }));

async function serve(parts) {
  if (parts.length !== 4 || parts[0] !== 'run') throw new Error(`unknown request: ${parts.join(' ')}`);
  const [, inputPath, dimsText, outputPath] = parts;
  const dims = dimsText.split(',').map(Number);
  if (dims.some((d) => !Number.isInteger(d) || d <= 0)) throw new Error(`bad dims ${dimsText}`);
  const count = dims.reduce((a, b) => a * b, 1);
  const bytes = readFileSync(inputPath);
  if (bytes.length !== count * 4) {
    throw new Error(`${inputPath}: ${bytes.length} bytes, expected ${count * 4} for dims ${dimsText}`);
  }
  // Copy into an aligned buffer: a Buffer's byteOffset need not be a multiple of 4.
  const data = new Float32Array(count);
  new Uint8Array(data.buffer).set(bytes);
  const start = process.hrtime.bigint();
  const result = await session.run({ [inputName]: new ort.Tensor('float32', data, dims) });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const out = result[outputName];
  if (out.type !== 'float32') throw new Error(`output ${outputName} is ${out.type}, expected float32`);
  writeFileSync(outputPath, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
  return `ok ${out.dims.join(',')} ${ms.toFixed(3)}`;
}

// Requests are answered one at a time, in order.
const lines = createInterface({ input: process.stdin, terminal: false });
for await (const line of lines) {
  const parts = line.trim().split(/\s+/).filter((p) => p.length > 0);
  if (parts.length === 0) continue;
  if (parts[0] === 'quit') break;
  try {
    reply(await serve(parts));
  } catch (e) {
    reply(`error ${e.message}`);
  }
}
process.exit(0);
