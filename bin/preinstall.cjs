#!/usr/bin/env node
// Keeps `npm i layerprobe` offline-safe. onnxruntime-node's postinstall downloads its CUDA
// provider libraries from api.nuget.org on linux/x64 unless they are already in its bin folder or
// the user set --onnxruntime-node-install (npm config or ONNXRUNTIME_NODE_INSTALL); without network
// the download fails and so does the whole install. layerprobe runs onnxruntime on the CPU only.
// npm runs every package's preinstall before any package's postinstall, so this script marks the
// three files as present (empty placeholders) before onnxruntime-node looks for them.
// It does nothing when the user chose an onnxruntime-node install mode, on other platforms, or
// when the files exist. To get the real CUDA libraries later:
//   ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const CUDA_FILES = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so', 'libonnxruntime_providers_tensorrt.so'];

function chosen() {
  const e = process.env;
  return e.ONNXRUNTIME_NODE_INSTALL || e.npm_config_onnxruntime_node_install || e.ONNXRUNTIME_NODE_INSTALL_CUDA || e.npm_config_onnxruntime_node_install_cuda;
}

/** Node's lookup: node_modules/onnxruntime-node in this folder or the nearest ancestor. */
function findOrt(from) {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', 'onnxruntime-node');
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return null;
  }
}

if (process.platform === 'linux' && process.arch === 'x64' && !chosen()) {
  const ort = findOrt(path.join(__dirname, '..'));
  const bin = ort && path.join(ort, 'bin', 'napi-v6', 'linux', 'x64');
  if (bin && fs.existsSync(bin)) {
    const missing = CUDA_FILES.filter((f) => !fs.existsSync(path.join(bin, f)));
    try {
      for (const f of missing) fs.writeFileSync(path.join(bin, f), '');
      if (missing.length) process.stderr.write('layerprobe: onnxruntime-node will use the CPU only (no CUDA download); for CUDA: ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node\n');
    } catch {
      // A read-only tree: let onnxruntime-node decide.
    }
  }
}
