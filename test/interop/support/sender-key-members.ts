// Group members for the Sender Keys interoperability tests and benchmark: one interface, played either by
// libsignal-client 0.90.0 (the oracle) or by Parley's protocol core. Node only.
import * as ls from '@signalapp/libsignal-client';
import { NodeCryptoProvider } from '../../../src/node/crypto-provider.ts';
import { ProtocolAddress } from '../../../src/protocol/address.ts';
import type { CryptoProvider } from '../../../src/protocol/crypto.ts';
import {
  InMemorySenderKeyStore,
  SenderKeyDistributionMessage,
  createSenderKeyDistributionMessage,
  groupDecrypt,
  groupEncrypt,
  processSenderKeyDistributionMessage,
} from '../../../src/protocol/sender-keys.ts';

/** `base` without native Ed25519 signing, so that sender keys sign with XEdDSA (keys.ts). */
export function withoutNativeEd25519Signing(base: CryptoProvider): CryptoProvider {
  return new Proxy(base, {
    get(target, prop) {
      if (prop === 'ed25519Sign') return undefined;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

export interface GroupMember {
  readonly kind: 'libsignal' | 'parley';
  /** The member's address name (device 1). */
  readonly name: string;
  /** Our distribution message for `distributionId` (creating our chain on first use). */
  distribute(distributionId: string): Promise<Uint8Array>;
  receiveDistribution(from: string, skdm: Uint8Array): Promise<void>;
  encrypt(distributionId: string, plaintext: Uint8Array): Promise<Uint8Array>;
  decrypt(from: string, message: Uint8Array): Promise<Uint8Array>;
}

const DEVICE_ID = 1;
const u8 = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);

class LsSenderKeyStore extends ls.SenderKeyStore {
  readonly #records = new Map<string, ls.SenderKeyRecord>();
  saveSenderKey(sender: ls.ProtocolAddress, distributionId: ls.Uuid, record: ls.SenderKeyRecord): Promise<void> {
    this.#records.set(`${distributionId}/${sender.toString()}`, record);
    return Promise.resolve();
  }
  getSenderKey(sender: ls.ProtocolAddress, distributionId: ls.Uuid): Promise<ls.SenderKeyRecord | null> {
    return Promise.resolve(this.#records.get(`${distributionId}/${sender.toString()}`) ?? null);
  }
}

/** A member played by libsignal. */
export class LibsignalMember implements GroupMember {
  readonly kind = 'libsignal';
  readonly #store = new LsSenderKeyStore();
  readonly #address: ls.ProtocolAddress;

  constructor(readonly name: string) {
    this.#address = ls.ProtocolAddress.new(name, DEVICE_ID);
  }

  async distribute(distributionId: string): Promise<Uint8Array> {
    return (await ls.SenderKeyDistributionMessage.create(this.#address, distributionId, this.#store)).serialize();
  }

  async receiveDistribution(from: string, skdm: Uint8Array): Promise<void> {
    await ls.processSenderKeyDistributionMessage(ls.ProtocolAddress.new(from, DEVICE_ID), ls.SenderKeyDistributionMessage.deserialize(u8(skdm)), this.#store);
  }

  async encrypt(distributionId: string, plaintext: Uint8Array): Promise<Uint8Array> {
    return (await ls.groupEncrypt(this.#address, distributionId, this.#store, u8(plaintext))).serialize();
  }

  async decrypt(from: string, message: Uint8Array): Promise<Uint8Array> {
    return ls.groupDecrypt(ls.ProtocolAddress.new(from, DEVICE_ID), this.#store, u8(message));
  }
}

/** A member played by Parley's protocol core, with the given provider. */
export class ParleyMember implements GroupMember {
  readonly kind = 'parley';
  readonly #store = new InMemorySenderKeyStore();
  readonly #address: ProtocolAddress;

  constructor(
    readonly name: string,
    readonly crypto: CryptoProvider = new NodeCryptoProvider(),
  ) {
    this.#address = new ProtocolAddress(name, DEVICE_ID);
  }

  async distribute(distributionId: string): Promise<Uint8Array> {
    return (await createSenderKeyDistributionMessage(this.crypto, this.#store, this.#address, distributionId)).serialize();
  }

  async receiveDistribution(from: string, skdm: Uint8Array): Promise<void> {
    await processSenderKeyDistributionMessage(this.crypto, new ProtocolAddress(from, DEVICE_ID), SenderKeyDistributionMessage.deserialize(skdm), this.#store);
  }

  async encrypt(distributionId: string, plaintext: Uint8Array): Promise<Uint8Array> {
    return (await groupEncrypt(this.crypto, this.#store, this.#address, distributionId, plaintext)).serialize();
  }

  async decrypt(from: string, message: Uint8Array): Promise<Uint8Array> {
    return groupDecrypt(this.crypto, this.#store, new ProtocolAddress(from, DEVICE_ID), message);
  }
}
