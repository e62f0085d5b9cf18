// The generated protobuf code in src/*/gen is committed; this keeps it in step with the .proto files:
// it regenerates into a temporary folder and compares file by file.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';

const root = path.resolve(import.meta.dirname, '../..');
const GEN_DIRS = ['src/protocol/gen', 'src/client/gen'];
const TEMPLATES = ['buf.gen.yaml', 'buf.gen.client.yaml'];

describe('generated protobuf code', () => {
  it('matches what `npm run gen:proto` produces from the .proto files', () => {
    const out = mkdtempSync(path.join(tmpdir(), 'parley-gen-'));
    try {
      const bin = path.join(root, 'node_modules/.bin');
      const env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` };
      for (const template of TEMPLATES) execFileSync(path.join(bin, 'buf'), ['generate', '--template', template, '-o', out], { cwd: root, env, stdio: 'pipe' });
      for (const dir of GEN_DIRS) {
        const committed = readdirSync(path.join(root, dir)).sort();
        const fresh = readdirSync(path.join(out, dir)).sort();
        assert.deepEqual(committed, fresh, `${dir}: files differ; run npm run gen:proto`);
        for (const file of fresh) {
          const a = readFileSync(path.join(root, dir, file), 'utf8');
          const b = readFileSync(path.join(out, dir, file), 'utf8');
          assert.ok(a === b, `${dir}/${file} is stale; run npm run gen:proto`);
        }
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
