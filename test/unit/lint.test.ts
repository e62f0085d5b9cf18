// Tests of the layering rules in eslint.config.js: each src/ folder is linted with small snippets, and
// every forbidden import or global must be reported there while the allowed ones must not be.
// (Signal-Desktop tests its own lint rule the same way.) Type information is switched off here: the
// layering rules do not need it, and the fixture paths do not exist on disk.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint, type Linter } from 'eslint';
import tseslint from 'typescript-eslint';

const root = fileURLToPath(new URL('../..', import.meta.url));
const LAYERING_RULES = ['no-restricted-imports', 'no-restricted-globals', 'no-restricted-syntax'] as const;
type LayeringRule = (typeof LAYERING_RULES)[number];

const eslint = new ESLint({
  cwd: root,
  overrideConfig: [{ files: ['**/*.ts'], ...(tseslint.configs.disableTypeChecked as Linter.Config) }],
});

/** The layering-rule messages ESLint reports for `code` as if it were the file `file` (relative to the repo). */
async function layeringMessages(file: string, code: string): Promise<Linter.LintMessage[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file), warnIgnored: true });
  assert.ok(result, `no lint result for ${file}`);
  const fatal = result.messages.filter((m) => m.fatal);
  assert.deepEqual(fatal, [], `snippet does not parse: ${code}`);
  return result.messages.filter((m) => (LAYERING_RULES as readonly string[]).includes(m.ruleId ?? ''));
}

const DEV_ONLY: ReadonlyArray<[string, LayeringRule]> = [
  [`import { PrivateKey } from '@signalapp/libsignal-client';`, 'no-restricted-imports'],
  [`import { x } from '@signalapp/libsignal-client/dist/Address.js';`, 'no-restricted-imports'],
  [`import kyber from 'crystals-kyber';`, 'no-restricted-imports'],
  [`const m = await import('@signalapp/libsignal-client');`, 'no-restricted-syntax'],
];

const NODE_BUILTINS: ReadonlyArray<[string, LayeringRule]> = [
  [`import { randomBytes } from 'node:crypto';`, 'no-restricted-imports'],
  [`import { createHash } from 'crypto';`, 'no-restricted-imports'],
  [`import { readFile } from 'fs/promises';`, 'no-restricted-imports'],
  [`import type { KeyObject } from 'node:crypto';`, 'no-restricted-imports'],
  [`export { EventEmitter } from 'events';`, 'no-restricted-imports'],
  [`const fs = await import('node:fs');`, 'no-restricted-syntax'],
];

/** Importing src/<layer> from a file directly in the folder, and from one a folder deeper. */
function layerImports(layer: string): Array<[string, LayeringRule]> {
  return [
    [`import { a } from '../${layer}/index.js';`, 'no-restricted-imports'],
    [`import type { B } from '../../${layer}/deep/b.js';`, 'no-restricted-imports'],
    [`export * from '../${layer}/c.js';`, 'no-restricted-imports'],
    [`import '../${layer}';`, 'no-restricted-imports'],
    [`const m = await import('../${layer}/d.js');`, 'no-restricted-syntax'],
  ];
}

function globalUses(name: string): Array<[string, LayeringRule]> {
  return [
    [`export const x = ${name};`, 'no-restricted-globals'],
    [`export const y = globalThis.${name};`, 'no-restricted-syntax'],
  ];
}

interface FolderCase {
  /** A fixture file inside the folder (it need not exist). */
  file: string;
  forbidden: ReadonlyArray<[string, LayeringRule]>;
  allowed: readonly string[];
}

const ALWAYS_ALLOWED = [
  `import { ed25519 } from '@noble/curves/ed25519.js';`,
  `import { concatBytes } from './bytes.js';`,
  `import { b } from './sub/b.js';`,
  `export const bytes = new Uint8Array(32);`,
  `export const c = globalThis.crypto;`,
  `export const t = new TextEncoder().encode('x');`,
];

const CASES: Record<string, FolderCase> = {
  'src/protocol': {
    file: 'src/protocol/__lint_fixture__.ts',
    forbidden: [
      ...DEV_ONLY,
      ...NODE_BUILTINS,
      ...['client', 'server', 'web', 'cli', 'node'].flatMap(layerImports),
      ...['Buffer', 'process', 'window', 'document'].flatMap(globalUses),
      [`export const m: unknown = require('x');`, 'no-restricted-globals'],
    ],
    allowed: [...ALWAYS_ALLOWED, `import { CryptoProvider } from '../protocol/crypto.js';`],
  },
  'src/protocol (nested)': {
    file: 'src/protocol/group/__lint_fixture__.ts',
    forbidden: [[`import { Client } from '../../client/client.js';`, 'no-restricted-imports'], ...NODE_BUILTINS.slice(0, 1)],
    allowed: [`import { concatBytes } from '../bytes.js';`],
  },
  'src/client': {
    file: 'src/client/__lint_fixture__.ts',
    forbidden: [
      ...DEV_ONLY,
      ...NODE_BUILTINS,
      ...['server', 'web', 'cli', 'node'].flatMap(layerImports),
      ...['Buffer', 'process', 'window', 'document'].flatMap(globalUses),
    ],
    allowed: [
      ...ALWAYS_ALLOWED,
      `import { ProtocolAddress } from '../protocol/address.js';`,
      `import type { SessionStore } from '../../protocol/stores.js';`,
      `export const ws = globalThis.WebSocket;`,
    ],
  },
  'src/server': {
    file: 'src/server/__lint_fixture__.ts',
    forbidden: [...DEV_ONLY, ...['client', 'web', 'cli'].flatMap(layerImports)],
    allowed: [
      ...ALWAYS_ALLOWED,
      `import { createServer } from 'node:http';`,
      `import { readFile } from 'fs/promises';`,
      `import { ProtocolError } from '../protocol/errors.js';`,
      `import { NodeCryptoProvider } from '../node/crypto-provider.js';`,
      `export const b = Buffer.alloc(1);`,
      `export const env = process.env;`,
    ],
  },
  'src/node': {
    file: 'src/node/__lint_fixture__.ts',
    forbidden: [...DEV_ONLY, ...['client', 'server', 'web', 'cli'].flatMap(layerImports)],
    allowed: [
      ...ALWAYS_ALLOWED,
      `import { createHash } from 'node:crypto';`,
      `import { clampX25519 } from '../protocol/crypto.js';`,
      `export const b = Buffer.alloc(1);`,
    ],
  },
  'src/node/media': {
    file: 'src/node/media/__lint_fixture__.ts',
    forbidden: [
      ...DEV_ONLY,
      ...['server', 'web', 'cli'].flatMap(layerImports),
      [`import { createApp } from '../../server/app.js';`, 'no-restricted-imports'],
    ],
    allowed: [
      ...ALWAYS_ALLOWED,
      `import { spawn } from 'node:child_process';`,
      `import type { MediaFiles } from '../../client/media/types.js';`,
      `import { ClientError } from '../../client/errors.js';`,
      `import { NodeCryptoProvider } from '../crypto-provider.js';`,
    ],
  },
  'src/web': {
    file: 'src/web/__lint_fixture__.ts',
    forbidden: [
      ...DEV_ONLY,
      ...NODE_BUILTINS,
      ...['server', 'cli', 'node'].flatMap(layerImports),
      ...['Buffer', 'process'].flatMap(globalUses),
    ],
    allowed: [
      ...ALWAYS_ALLOWED,
      `import { Client } from '../client/client.js';`,
      `import { ProtocolAddress } from '../protocol/address.js';`,
      `export const w = window.location.href;`,
      `export const d = document.title;`,
    ],
  },
  'src/cli': {
    file: 'src/cli/__lint_fixture__.ts',
    forbidden: [
      ...DEV_ONLY,
      ...layerImports('web'),
      [`import { createApp } from '../server/app.js';`, 'no-restricted-imports'],
      [`import { ServerError } from '../../server/errors.js';`, 'no-restricted-imports'],
    ],
    allowed: [
      ...ALWAYS_ALLOWED,
      `import { readFile } from 'node:fs/promises';`,
      `import { startServer } from '../server/main.js';`,
      `import { parseServerArgs } from '../../server/main.js';`,
      `import { Client } from '../client/client.js';`,
      `import { NodeCryptoProvider } from '../node/crypto-provider.js';`,
      `export const env = process.env;`,
    ],
  },
  'test/': {
    file: 'test/unit/__lint_fixture__.ts',
    forbidden: [],
    allowed: [
      `import { PrivateKey } from '@signalapp/libsignal-client';`,
      `import kyber from 'crystals-kyber';`,
      `import { randomBytes } from 'node:crypto';`,
      `import { NodeCryptoProvider } from '../../src/node/crypto-provider.ts';`,
      `export const b = Buffer.alloc(1);`,
    ],
  },
};

describe('eslint layering rules', () => {
  for (const [folder, { file, forbidden, allowed }] of Object.entries(CASES)) {
    describe(folder, () => {
      for (const [code, rule] of forbidden) {
        it(`reports: ${code}`, async () => {
          const messages = await layeringMessages(file, code);
          assert.ok(
            messages.some((m) => m.ruleId === rule),
            `expected ${rule} in ${file} for: ${code}\ngot: ${JSON.stringify(messages.map((m) => m.ruleId))}`,
          );
        });
      }
      for (const code of allowed) {
        it(`allows: ${code}`, async () => {
          const messages = await layeringMessages(file, code);
          assert.deepEqual(
            messages.map((m) => `${m.ruleId}: ${m.message}`),
            [],
          );
        });
      }
    });
  }

  it('ignores generated protobuf code and build output', async () => {
    assert.equal(await eslint.isPathIgnored(path.join(root, 'src/protocol/gen/wire_pb.ts')), true);
    assert.equal(await eslint.isPathIgnored(path.join(root, 'node_modules/x/index.js')), true);
    assert.equal(await eslint.isPathIgnored(path.join(root, 'dist/index.js')), true);
    assert.equal(await eslint.isPathIgnored(path.join(root, 'src/protocol/keys.ts')), false);
  });

  it('runs type-aware rules: no-floating-promises, except for node:test describe/it', async () => {
    // Linted as if it were an existing file, so that the project service gives it type information.
    const typed = new ESLint({ cwd: root });
    const code = [
      `import { describe, it } from 'node:test';`,
      `describe('a', () => { it('b', async () => {}); });`,
      `Promise.resolve(1);`,
      `async function f(): Promise<void> {}`,
      `f();`,
    ].join('\n');
    const [result] = await typed.lintText(code, { filePath: path.join(root, 'test/unit/errors-doc.test.ts') });
    const floating = (result?.messages ?? []).filter((m) => m.ruleId === '@typescript-eslint/no-floating-promises').map((m) => m.line);
    assert.deepEqual(floating, [3, 5]);
  });

  it('explains the layer in the message', async () => {
    const [message] = await layeringMessages('src/protocol/__lint_fixture__.ts', `import { x } from '../server/app.js';`);
    assert.match(message?.message ?? '', /src\/protocol must not import src\/\{.*server.*\}/);
  });
});
