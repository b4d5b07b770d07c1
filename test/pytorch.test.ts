/**
 * docs/pytorch.md, run as written: its export recipe with the system PyTorch (/usr/bin/python3),
 * its shell commands on the exported file (with a smaller --per-class), and its Python snippets
 * for reading the outputs. The exported model's activations, as layerprobe extracts them through
 * onnxruntime, are checked against the PyTorch module's own output on the same images.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const PY = '/usr/bin/python3';
const DOC = readFileSync(path.join(ROOT, 'docs/pytorch.md'), 'utf8');

/** The fenced block right after `<!-- test: name -->`. */
function block(name: string): string {
  const m = new RegExp(`<!-- test: ${name} -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(DOC);
  assert.ok(m, `docs/pytorch.md has no block marked ${name}`);
  return m[1]!;
}

function hasPython(modules: string): boolean {
  return spawnSync(PY, ['-c', `import ${modules}`], { encoding: 'utf8', timeout: 120_000 }).status === 0;
}

const torchMissing = hasPython('torch, numpy') ? false : `${PY} has no torch/numpy: the PyTorch recipe cannot be run here`;

test('the PyTorch export recipe, layerprobe on its output, and the reading snippets', { skip: torchMissing }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lp-pytorch-'));
  const py = (code: string) => {
    const file = path.join(dir, `snippet-${Math.random().toString(36).slice(2)}.py`);
    writeFileSync(file, code);
    return spawnSync(PY, [file], { cwd: dir, encoding: 'utf8', timeout: 300_000 });
  };
  const lp = (args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'bin/layerprobe.js'), ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, CI: '1' }, timeout: 300_000 });
  try {
    const recipe = block('export recipe');
    writeFileSync(path.join(dir, 'recipe.py'), recipe);
    const exp = py(recipe);
    assert.equal(exp.status, 0, exp.stderr);

    // The shell commands of the page, as written except for a smaller sample.
    const shell = /Then, in a shell:\s*```sh\n([\s\S]*?)```/.exec(DOC)![1]!;
    const commands = shell.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l.startsWith('layerprobe '));
    assert.equal(commands.length, 3);
    for (const c of commands) {
      const args = (c.slice('layerprobe '.length).match(/"[^"]*"|\S+/g) ?? []).map((s) => s.replace(/^"|"$/g, '').replace(/^100$/, '20'));
      const r = lp(args);
      assert.equal(r.status, 0, `${c}\n${r.stderr}`);
    }

    const listing = lp(['layers', 'convnet.onnx', '--json']);
    const layers = (JSON.parse(listing.stdout) as { result: { layers: { id: string; module?: string | null }[] } }).result.layers;
    assert.equal(layers.find((l) => l.id === '/fc1_relu/Relu_output_0')?.module, 'fc1_relu');
    assert.equal(layers.find((l) => l.id === '/conv2/Conv_output_0')?.module, 'conv2');

    // Independent check: the extracted fc1_relu activations equal PyTorch's on the same images.
    const check = py(`
import gzip, json
import numpy as np
import torch
exec(open("recipe.py").read())
m = json.load(open("acts/manifest.json"))
layer = m["models"][0]["layers"][0]
X = np.load("acts/" + layer["file"])
idx = np.load("acts/indices.npy")
raw = np.frombuffer(gzip.open(${JSON.stringify(path.join(ROOT, 'datasets/fashion-mnist/t10k-images-idx3-ubyte.gz'))}).read()[16:], dtype=np.uint8).reshape(-1, 1, 28, 28)
x = torch.from_numpy(raw[idx].astype(np.float32) / 255.0)
with torch.no_grad():
    ref = model.fc1_relu(model.fc1(model.flatten(model.pool2(model.relu2(model.conv2(model.pool1(model.relu1(model.conv1(x)))))))))
print(layer["id"], X.shape[0], float(np.abs(X - ref.numpy()).max()))
`);
    assert.equal(check.status, 0, check.stderr);
    const [id, n, diff] = check.stdout.trim().split('\n').pop()!.split(' ');
    assert.equal(id, '/fc1_relu/Relu_output_0');
    assert.equal(Number(n), 200);
    assert.ok(Number(diff) < 1e-4, `max |onnxruntime − torch| = ${diff}`);

    // The reading snippets, as written, against the run folders made above.
    const reading = py(block('reading numpy'));
    assert.equal(reading.status, 0, reading.stderr);
    const report = JSON.parse(readFileSync(path.join(dir, 'runs/convnet/report.json'), 'utf8')) as { models: { layers: { id: string; metrics: Record<string, { value: number }> }[] }[] };
    const first = report.models[0]!.layers[0]!;
    assert.match(reading.stdout, new RegExp(`convnet ${first.id.replace(/[/*]/g, '\\$&')} ${first.metrics.compression!.value}`));
    assert.match(reading.stdout, /\/fc1_relu\/Relu_output_0 \(200, 64\) \[20 20 20 20 20 20 20 20 20 20\]/);

    if (hasPython('pandas')) {
      const pd = py(block('reading pandas'));
      assert.equal(pd.status, 0, pd.stderr);
      assert.match(pd.stdout, /probe_heldout_accuracy/);
    } else {
      t.diagnostic(`pandas snippet not run: ${PY} has no pandas`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
