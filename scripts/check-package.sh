#!/usr/bin/env bash
# The package as users get it: packed from this checkout (prepack builds it), installed into an
# empty project from the tarball, loaded with import and with require, and its type declarations
# checked by a consumer with skipLibCheck off. An install that warns EBADENGINE fails: `engines`
# must be true for the whole dependency tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tarball=$(cd "$root" && npm pack --silent --pack-destination "$work" | tail -n 1)
tar -tzf "$work/$tarball" >"$work/files.txt"
grep -q "^package/dist/index.js$" "$work/files.txt" || { echo "the tarball has no dist/index.js"; exit 1; }
grep -q "^package/LICENSE$" "$work/files.txt" || { echo "the tarball has no LICENSE"; exit 1; }
grep -q "^package/deploy/prometheus/rules.yml$" "$work/files.txt" || { echo "the tarball has no Prometheus rules"; exit 1; }
if grep -q "\.map$" "$work/files.txt"; then echo "the tarball ships source maps of sources it does not ship"; exit 1; fi

cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund "./$tarball" "@types/node@$(node -p 'process.versions.node.split(".")[0]')" >install.log 2>&1 \
  || { cat install.log; exit 1; }
if grep -q EBADENGINE install.log; then cat install.log; echo "EBADENGINE: engines is not true"; exit 1; fi

node -e "
  const memory = require('swisper-memory');
  if (typeof memory.createMemoryManager !== 'function') throw new Error('require: no createMemoryManager');
  if (typeof require('swisper-memory/service').createMemoryService !== 'function') throw new Error('require: no service');"
node --input-type=module -e "
  const memory = await import('swisper-memory');
  if (typeof memory.createMemoryManager !== 'function') throw new Error('import: no createMemoryManager');"

# The embedded default's first start, from the installed files: the cluster comes from the template
# shipped beside the compiled storage modules. A V8 option and --input-type, as programs run it:
# the database's worker thread starts under both.
MEMORY_DATA_DIR="$work/embedded" REDIS_URL= DATABASE_URL= node --max-old-space-size=512 --input-type=module -e "
  const { createMemoryManager } = await import('swisper-memory');
  const memory = await createMemoryManager();
  await memory.addMessage('s1', { role: 'user', content: 'kept by the installed package' });
  const context = await memory.getContext('s1');
  await memory.close();
  if (context.buffer_messages.at(-1)?.content !== 'kept by the installed package') throw new Error('embedded: message not read back');"

cat >consumer.ts <<'TS'
import { createMemoryManager, type MemoryManager } from "swisper-memory";
import { createMemoryService } from "swisper-memory/service";
import { MemoryMetrics } from "swisper-memory/metrics";
export async function use(): Promise<MemoryManager> {
  void createMemoryService;
  void MemoryMetrics;
  return createMemoryManager({ redis: false });
}
TS
"$root/node_modules/.bin/tsc" --noEmit --strict --skipLibCheck false --types node \
  --module nodenext --moduleResolution nodenext --target es2022 consumer.ts
echo "package: tarball, require, import, the embedded first start and types (skipLibCheck off) all work"
