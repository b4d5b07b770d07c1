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
//
// It also removes the native binaries onnxruntime-node ships for the *other* platforms (its one
// package carries darwin, linux and win32 builds for x64 and arm64: ~255 of its ~300 MB), keeping
// those of the platform installing it — the way sharp installs only its own platform's libvips.
// The platform's own folder must be there, or nothing is removed. Keep them all with
// LAYERPROBE_ONNXRUNTIME_ALL_PLATFORMS=1 (e.g. a node_modules copied to another OS).
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

const ort = findOrt(path.join(__dirname, '..'));

if (process.platform === 'linux' && process.arch === 'x64' && !chosen()) {
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

/** onnxruntime-node's bin/napi-vN/PLATFORM/ARCH folders other than this process's. */
function otherPlatforms(root) {
  const out = [];
  const bin = path.join(root, 'bin');
  if (!fs.existsSync(bin)) return out;
  for (const napi of fs.readdirSync(bin).filter((d) => /^napi-v\d+$/.test(d))) {
    const own = path.join(bin, napi, process.platform, process.arch);
    if (!fs.existsSync(own)) continue; // never leave onnxruntime without this platform's binary
    for (const platform of fs.readdirSync(path.join(bin, napi))) {
      const pdir = path.join(bin, napi, platform);
      if (!fs.statSync(pdir).isDirectory()) continue;
      for (const arch of fs.readdirSync(pdir)) {
        if (platform === process.platform && arch === process.arch) continue;
        out.push(path.join(pdir, arch));
      }
    }
  }
  return out;
}

if (ort && process.env.LAYERPROBE_ONNXRUNTIME_ALL_PLATFORMS !== '1') {
  let freed = 0;
  const size = (p) => (fs.statSync(p).isDirectory() ? fs.readdirSync(p).reduce((s, f) => s + size(path.join(p, f)), 0) : fs.statSync(p).size);
  try {
    for (const dir of otherPlatforms(ort)) {
      freed += size(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    if (freed > 0) process.stderr.write(`layerprobe: removed onnxruntime-node's binaries for other platforms (${Math.round(freed / 1e6)} MB); keep them with LAYERPROBE_ONNXRUNTIME_ALL_PLATFORMS=1\n`);
  } catch {
    // A read-only or shared tree: leave it as it is.
  }
}
