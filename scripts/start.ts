// `npm start`. The server and the terminal client (src/cli) arrive with the next milestone; until then
// this prints what exists and how to exercise it, and exits 0.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('..', import.meta.url);
const { version } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string };
const has = (file: string): boolean => existsSync(fileURLToPath(new URL(file, root)));

const commands: Array<[string, string]> = [
  ['npm test', 'typecheck, lint, unit tests in Node, protocol tests in headless Chromium'],
  ['npm run test:unit', 'only the Node tests'],
  ['npm run test:browser', 'only the protocol tests in Chromium (WebCrypto provider)'],
];
if (has('bench/protocol.ts')) commands.push(['npm run bench:protocol', 'protocol benchmarks: sessions, 1:1 and sender-key encrypt/decrypt, against libsignal']);

console.log(`Parley ${version}: self-hostable, end-to-end-encrypted messaging (Signal Protocol, wire-compatible with libsignal).

Today Parley is its protocol core (src/protocol): identity keys, XEdDSA, Kyber prekeys, PQXDH, the
Double Ratchet, Sender Keys and safety numbers, as a library. There is no server to start yet: the server,
the SDK and the terminal client arrive with the next milestone, and then \`npm start\` will run the server.

What you can run now:
${commands.map(([cmd, what]) => `  ${cmd.padEnd(24)}${what}`).join('\n')}
`);
