// Node-only checks of the node:crypto provider beyond the isomorphic provider tests.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';
import path from 'node:path';
import { describe, it } from 'node:test';
import { NodeCryptoProvider } from '../../../src/node/crypto-provider.ts';

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const root = path.resolve(import.meta.dirname, '../../..');

describe('NodeCryptoProvider (Node only)', () => {
  it('derives X25519 public keys exactly as a PKCS#8 import does', async () => {
    const crypto = new NodeCryptoProvider();
    for (let i = 0; i < 100; i++) {
      const { privateKey, publicKey } = await crypto.x25519GenerateKeyPair();
      const reference = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, privateKey]), format: 'der', type: 'pkcs8' });
      const x = createPublicKey(reference).export({ format: 'jwk' }).x;
      assert.equal(Buffer.from(publicKey).toString('base64url'), x);
      // A fresh provider (no cached key objects) derives the same public key from the private bytes.
      assert.deepEqual(await new NodeCryptoProvider().x25519PublicKey(privateKey.slice()), publicKey);
      const other = await crypto.x25519GenerateKeyPair();
      const ours = await crypto.x25519(privateKey, other.publicKey);
      const expected = diffieHellman({
        privateKey: reference,
        publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(other.publicKey).toString('base64url') }, format: 'jwk' }),
      });
      assert.deepEqual(Buffer.from(ours), expected);
    }
  });

  it('generates 30,000 key pairs under garbage-collector pressure without deadlocking (Node 20 generateKeyPairSync does)', () => {
    // In a child process with a deadline: a deadlock would otherwise hang the test runner.
    const script = [
      "import { NodeCryptoProvider } from './src/node/crypto-provider.ts';",
      'const c = new NodeCryptoProvider();',
      'for (let i = 0; i < 30000; i++) await c.x25519GenerateKeyPair();',
      "console.log('done');",
    ].join('\n');
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, timeout: 60_000, encoding: 'utf8' });
    assert.equal(child.signal, null, 'key generation did not finish within 60 s');
    assert.equal(child.stdout.trim(), 'done', child.stderr);
  });
});
