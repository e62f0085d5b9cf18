// Node hands bytes over as Buffers (request bodies, socket frames), and Buffer.slice() returns a view of the
// same memory, not a copy. The protocol core must neither write into bytes it is given nor keep views of
// them: a device list published over the WebSocket once came back with its signatures altered, because
// verifying a signature cleared a bit in what was meant to be a copy.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyPair, PublicKey } from '../../../src/protocol/index.ts';
import { NodeCryptoProvider } from '../../../src/node/crypto-provider.ts';

const crypto = new NodeCryptoProvider();

describe('protocol core with Buffer inputs', () => {
  it('verifies a signature without changing the Buffer it was given', async () => {
    const message = Buffer.from('device list');
    // The top bit of an XEdDSA signature carries the sign of the signer's Edwards key (half of all keys), and
    // verification clears it on its working copy: find a key whose signatures have it set.
    for (let i = 0; i < 64; i++) {
      const pair = await KeyPair.generate(crypto);
      const signature = Buffer.from(pair.sign(crypto, message));
      if ((signature[63] as number) < 0x80) continue;
      const before = Buffer.from(signature);
      assert.equal(await pair.publicKey.verifySignature(crypto, message, signature), true);
      assert.deepEqual(signature, before);
      return;
    }
    assert.fail('no signature with the sign bit set from 64 keys');
  });

  it('keeps its own copy of a key deserialized from a Buffer', async () => {
    const pair = await KeyPair.generate(crypto);
    const wire = Buffer.from(pair.publicKey.serialized);
    const key = PublicKey.deserialize(wire);
    wire.fill(0, 1);
    assert.deepEqual(key.serialized, pair.publicKey.serialized);
  });
});
