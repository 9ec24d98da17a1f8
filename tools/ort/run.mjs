// Runs an ONNX model in ONNX Runtime (CPU) on one raw float32 input and writes its first output as
// raw float32 (little-endian, C order). A test tool: the C++ tests compare this with the C++ model.
//
// Usage: node run.mjs MODEL.onnx INPUT.bin DIMS OUTPUT.bin [THREADS]
//   DIMS: the input shape, comma-separated (e.g. 1,3,640,640); the input is the model's first input.
// Prints one JSON line: {"input": NAME, "output": NAME, "dims": [...], "ms": inference time}.
import { readFileSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [model, inputPath, dimsText, outputPath, threads = '1'] = process.argv.slice(2);
if (!model || !inputPath || !dimsText || !outputPath) {
  console.error('usage: node run.mjs MODEL.onnx INPUT.bin DIMS OUTPUT.bin [THREADS]');
  process.exit(2);
}
const dims = dimsText.split(',').map(Number);
const bytes = readFileSync(inputPath);
const count = dims.reduce((a, b) => a * b, 1);
if (bytes.length !== count * 4) {
  console.error(`${inputPath}: ${bytes.length} bytes, expected ${count * 4} for dims ${dimsText}`);
  process.exit(2);
}
// Copy into an aligned buffer: a Buffer's byteOffset need not be a multiple of 4.
const data = new Float32Array(count);
new Uint8Array(data.buffer).set(bytes);

const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: Number(threads),
  interOpNumThreads: 1,
  executionProviders: ['cpu'],
});
const inputName = session.inputNames[0];
const outputName = session.outputNames[0];
const start = process.hrtime.bigint();
const result = await session.run({ [inputName]: new ort.Tensor('float32', data, dims) });
const ms = Number(process.hrtime.bigint() - start) / 1e6;
const out = result[outputName];
if (out.type !== 'float32') {
  console.error(`output ${outputName} is ${out.type}, expected float32`);
  process.exit(1);
}
writeFileSync(outputPath, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
console.log(JSON.stringify({ input: inputName, output: outputName, dims: out.dims, ms }));
