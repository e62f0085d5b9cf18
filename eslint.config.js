// ESLint 9 flat config. Two jobs: typescript-eslint's recommended type-checked rules for the TypeScript
// sources, and the layering of src/ (which folder may import what, which runtime globals it may touch).
// The layering rules have their own tests in test/unit/lint.test.ts; change both together.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** Escapes a string for use inside a RegExp. */
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** `node:*` and the bare names of Node's built-in modules (`crypto`, `fs/promises`, ...). */
const NODE_BUILTIN = `^(node:.*|(${builtinModules.map(escape).join('|')})(/.*)?)$`;

/**
 * Packages no file in src/ may import: libsignal is the dev-only test oracle (native, Node only) and
 * crystals-kyber is a dev-only reference for Kyber vectors.
 */
const DEV_ONLY_PACKAGE = '^(@signalapp/libsignal-client|crystals-kyber)(/.*)?$';

/** A relative import that climbs out of the current folder into one of the named src/ layers. */
const layerImport = (layers) => `^(\\./)?(\\.\\./)+(${layers.join('|')})(/.*)?$`;

/**
 * The three layering rules of one src/ folder. Flat config does not merge the options of a rule set by
 * two config objects (the later one wins), so each folder gets the complete set, the src-wide
 * dev-only-package ban included.
 *
 * @param {string} folder e.g. 'src/protocol', for the messages
 * @param {{ nodeBuiltins: boolean, layers: string[], globals: string[], why: string, extra?: Array<{ regex: string, message: string }> }} options
 *   nodeBuiltins: whether Node built-in modules may be imported; layers: src/ sibling folders that may
 *   not be imported; globals: runtime globals that may not be used; why: the reason, for the messages;
 *   extra: further forbidden import patterns.
 */
function layering(folder, { nodeBuiltins, layers, globals, why, extra = [] }) {
  const patterns = [
    { regex: DEV_ONLY_PACKAGE, message: 'libsignal and crystals-kyber are dev-only test oracles: use them in test/ only.' },
    ...extra,
  ];
  if (!nodeBuiltins) {
    patterns.push({ regex: NODE_BUILTIN, message: `${folder} must not import Node built-ins: ${why}` });
  }
  if (layers.length > 0) {
    patterns.push({
      regex: layerImport(layers),
      message: `${folder} must not import src/{${layers.join(',')}} (dependency direction: see README "Layout").`,
    });
  }
  // Dynamic import() is not covered by no-restricted-imports. esquery regexes cannot contain '/'.
  const esq = (regex) => `/${regex.replaceAll('/', '\\x2F')}/`;
  const syntax = patterns.map((p) => ({
    selector: `ImportExpression > Literal.source[value=${esq(p.regex)}]`,
    message: p.message,
  }));
  if (globals.length > 0) {
    syntax.push({
      selector: `MemberExpression[object.name=/^(globalThis|self|window)$/][property.name=/^(${globals.join('|')})$/]`,
      message: `${folder} must not use ${globals.join(', ')}: ${why}`,
    });
  }
  return {
    files: [`${folder}/**`],
    rules: {
      'no-restricted-imports': ['error', { patterns }],
      'no-restricted-globals': ['error', ...globals.map((name) => ({ name, message: `${folder} must not use ${name}: ${why}` }))],
      'no-restricted-syntax': ['error', ...syntax],
    },
  };
}

const ISOMORPHIC = 'it runs in Node and in the browser (bytes are Uint8Array, crypto comes from the injected CryptoProvider, I/O from the caller).';
const BROWSER = 'it runs in the browser.';

export default defineConfig(
  {
    ignores: ['node_modules/', 'dist/', 'data/', '.tmp/', 'src/*/gen/'],
  },
  js.configs.recommended,
  {
    files: ['**/*.ts', 'src/web/**/*.tsx'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        // Each file is checked against the nearest tsconfig.json: the root one for src/, test/ and
        // bench/, scripts/tsconfig.json for scripts/.
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's describe/it/test return promises that the runner itself tracks.
          allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }],
        },
      ],
      // `async` on a function without `await` is how an implementation of an async interface (a store, a
      // provider) turns a synchronous throw into a rejection; that is deliberate, not a mistake.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { sourceType: 'module', globals: { console: 'readonly', process: 'readonly' } },
  },

  // ---- Layering of src/ (dependency direction: protocol <- client <- web, cli; protocol <- node <- server, cli)
  layering('src', { nodeBuiltins: true, layers: [], globals: [], why: '' }),
  layering('src/protocol', {
    nodeBuiltins: false,
    layers: ['client', 'server', 'web', 'cli', 'node'],
    globals: ['Buffer', 'process', 'window', 'document', 'require'],
    why: ISOMORPHIC,
  }),
  layering('src/client', {
    nodeBuiltins: false,
    layers: ['server', 'web', 'cli', 'node'],
    globals: ['Buffer', 'process', 'window', 'document'],
    why: ISOMORPHIC,
  }),
  layering('src/server', { nodeBuiltins: true, layers: ['client', 'web', 'cli'], globals: [], why: '' }),
  layering('src/node', { nodeBuiltins: true, layers: ['client', 'server', 'web', 'cli'], globals: [], why: '' }),
  // src/node/media implements the SDK's media contract (src/client/media/types.ts) in Node, so it may import
  // src/client; the server must not import it.
  layering('src/node/media', { nodeBuiltins: true, layers: ['server', 'web', 'cli'], globals: [], why: '' }),
  layering('src/web', { nodeBuiltins: false, layers: ['server', 'cli', 'node'], globals: ['Buffer', 'process'], why: BROWSER }),
  // The web app's Vite config runs in Node at build time (it ships nothing to the browser).
  { ...layering('src/web', { nodeBuiltins: true, layers: ['server', 'cli', 'node'], globals: [], why: '' }), files: ['src/web/vite.config.ts'] },
  // The terminal client runs the server for `parley serve` through its entry point only (src/server/main.ts).
  layering('src/cli', {
    nodeBuiltins: true,
    layers: ['web'],
    globals: [],
    why: '',
    extra: [
      {
        regex: '^(\\./)?(\\.\\./)+server/(?!main\\.js$).+$',
        message: 'src/cli may import the server only through its entry point, src/server/main.js (startServer, parseServerArgs).',
      },
    ],
  }),
);
