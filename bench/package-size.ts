/**
 * Size of what a user installs: the `npm pack` tarball and the node_modules of an offline install
 * of it (tfjs-node is an optional dependency whose install fails offline, so npm leaves it out: the
 * figure is without it), plus the
 * largest packages in that tree. Targets from issue 16: tarball < 8 MB, install < 250 MB. Also the
 * install with dependencies' install scripts held back (--ignore-scripts, as an npm that requires
 * approval does): layerprobe's preinstall then cannot remove onnxruntime-node's other-platform binaries,
 * and tfjs-node's failing download never runs, so tfjs-node and the TF.js umbrella it depends on stay.
 * Prints one JSON line.
 *
 *   node --import tsx bench/package-size.ts
 */
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { folderBytes, packAndInstallOffline } from './package-install.js';

const MB = 1e6;
const r = packAndInstallOffline();
const noScripts = packAndInstallOffline({ ignoreScripts: true });
rmSync(noScripts.dir, { recursive: true, force: true });
const nm = path.join(r.dir, 'node_modules');
const sizes: [string, number][] = [];
for (const name of readdirSync(nm)) {
  if (name.startsWith('.')) continue;
  const names = name.startsWith('@') ? readdirSync(path.join(nm, name)).map((n) => `${name}/${n}`) : [name];
  for (const n of names) sizes.push([n, folderBytes(path.join(nm, n))]);
}
sizes.sort((a, b) => b[1] - a[1]);
process.stdout.write(
  JSON.stringify({
    name: 'package size',
    tarballMB: Number((r.tarballBytes / MB).toFixed(2)),
    installMB: Number((r.nodeModulesBytes / MB).toFixed(1)),
    installSeconds: Number((r.installMs / 1000).toFixed(1)),
    installWithoutScriptsMB: Number((noScripts.nodeModulesBytes / MB).toFixed(1)),
    largestMB: Object.fromEntries(sizes.slice(0, 8).map(([n, b]) => [n, Number((b / MB).toFixed(1))])),
    targets: { tarballMB: 8, installMB: 250 },
  }) + '\n',
);
rmSync(r.dir, { recursive: true, force: true });
