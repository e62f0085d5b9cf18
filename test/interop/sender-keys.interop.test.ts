// Sender Keys interoperability with libsignal-client 0.90.0: a group of ten members, half played by libsignal
// and half by Parley (some signing with XEdDSA, some with the native Ed25519 path), each distributing its
// chain to all the others and every message decrypting at every other member in shuffled order. Node only.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ls from '@signalapp/libsignal-client';
import { NodeCryptoProvider } from '../../src/node/crypto-provider.ts';
import { ProtocolError, ProtocolErrorCode } from '../../src/protocol/errors.ts';
import { LibsignalMember, ParleyMember, withoutNativeEd25519Signing, type GroupMember } from './support/sender-key-members.ts';

const DIST = '2b4f6e1a-93c8-4d7e-a1f0-5c6b7d8e9f00';
const SECOND_DIST = '7e0c1d2e-3f40-4152-8637-48596a7b8c9d';
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A deterministic shuffle (Fisher-Yates over xorshift32), so failures reproduce. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = items.slice();
  let x = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

function isDuplicate(err: unknown): boolean {
  return (
    ProtocolError.is(err, ProtocolErrorCode.DuplicateMessage) ||
    (err instanceof ls.LibSignalErrorBase && err.code === ls.ErrorCode.DuplicatedMessage)
  );
}

function makeGroup(): GroupMember[] {
  const members: GroupMember[] = [];
  for (let i = 0; i < 10; i++) {
    const name = `member-${i}`;
    if (i % 2 === 0) members.push(new LibsignalMember(name));
    else members.push(new ParleyMember(name, i % 4 === 1 ? withoutNativeEd25519Signing(new NodeCryptoProvider()) : new NodeCryptoProvider()));
  }
  return members;
}

async function distributeAll(members: GroupMember[], distributionId: string): Promise<void> {
  for (const sender of members) {
    const skdm = await sender.distribute(distributionId);
    for (const receiver of members) if (receiver !== sender) await receiver.receiveDistribution(sender.name, skdm);
  }
}

describe('Sender Keys interop with libsignal 0.90', () => {
  it('ten members, libsignal and Parley, every message decrypts everywhere in shuffled order', async () => {
    const members = makeGroup();
    await distributeAll(members, DIST);
    const ROUNDS = 12;
    // Every member sends ROUNDS messages; each receiver gets each sender's messages in its own order.
    const sent = new Map<string, Uint8Array[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const sender of members) {
        const list = sent.get(sender.name) ?? [];
        list.push(await sender.encrypt(DIST, enc(`${sender.name} round ${round}`)));
        sent.set(sender.name, list);
      }
    }
    let decrypted = 0;
    for (const [r, receiver] of members.entries()) {
      for (const [s, sender] of members.entries()) {
        if (receiver === sender) continue;
        const messages = sent.get(sender.name)!;
        for (const round of shuffled([...messages.keys()], 1 + r * 10 + s)) {
          const plaintext = await receiver.decrypt(sender.name, messages[round]!);
          assert.equal(dec(plaintext), `${sender.name} round ${round}`, `${receiver.kind} ${receiver.name} from ${sender.kind} ${sender.name}`);
          decrypted++;
        }
        // A replay is refused on both implementations.
        await assert.rejects(receiver.decrypt(sender.name, messages[ROUNDS - 1]!), isDuplicate);
      }
    }
    assert.equal(decrypted, 10 * 9 * ROUNDS);
  });

  it('gaps within the window both ways, and a second distribution id alongside the first', async () => {
    const [lsSender, ourReceiver, ourSender, lsReceiver] = [
      new LibsignalMember('ls-sender'),
      new ParleyMember('our-receiver'),
      new ParleyMember('our-sender', new NodeCryptoProvider()),
      new LibsignalMember('ls-receiver'),
    ];
    for (const [sender, receiver] of [
      [lsSender, ourReceiver],
      [ourSender, lsReceiver],
    ] as const) {
      await receiver.receiveDistribution(sender.name, await sender.distribute(DIST));
      await receiver.receiveDistribution(sender.name, await sender.distribute(SECOND_DIST));
      const messages: Uint8Array[] = [];
      for (let i = 0; i < 2600; i++) messages.push(await sender.encrypt(DIST, enc(`m${i}`)));
      const other = await sender.encrypt(SECOND_DIST, enc('second distribution'));
      // The newest first: 2,599 keys skipped, the oldest 599 dropped (at most 2,000 kept).
      for (const i of [2599, 1000, 599, 2598, 0]) {
        if (i < 599) await assert.rejects(receiver.decrypt(sender.name, messages[i]!), isDuplicate, `${sender.kind} -> ${receiver.kind} ${i}`);
        else assert.equal(dec(await receiver.decrypt(sender.name, messages[i]!)), `m${i}`);
      }
      assert.equal(dec(await receiver.decrypt(sender.name, other)), 'second distribution');
    }
  });
});
