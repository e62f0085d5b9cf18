// Sender Keys micro benchmark: group encrypt and decrypt per second of 100-byte messages, Parley's protocol
// core against libsignal-client 0.90.0, one sender and one receiver each, with in-memory stores. Called by
// bench/protocol.ts; on its own:
//
//   node --import tsx -e "import('./bench/sender-keys.ts').then(async (m) => console.log(await m.benchSenderKeys()))"
//
// Each rate is measured for about `seconds` (default BENCH_SECONDS or 2) of this process's CPU time, after a
// warm-up, as the figures in /work/shared/SIGNAL-WIRE-NOTES.md are; every loop is bounded in count and in wall
// time.
import type { CryptoProvider } from '../src/protocol/crypto.ts';
import { LibsignalMember, ParleyMember, type GroupMember } from '../test/interop/support/sender-key-members.ts';

const PLAINTEXT = new Uint8Array(100).fill(0x61);
const DISTRIBUTION_ID = '5f1c2b3a-4d5e-4f60-8172-8394a5b6c7d8';
const WARM_UP = 300;
const MAX_OPS = 200_000;
/** Operations timed together (the CPU clock is read per chunk, not per operation). */
const CHUNK = 100;

/** Encrypt and decrypt rates (operations per second). */
export interface SenderKeyRates {
  encrypt: number;
  decrypt: number;
}

/** CPU time of this process so far, in milliseconds: steadier than wall time on a shared machine. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

async function measurePair(sender: GroupMember, receiver: GroupMember, seconds: number): Promise<SenderKeyRates> {
  await receiver.receiveDistribution(sender.name, await sender.distribute(DISTRIBUTION_ID));
  for (let i = 0; i < WARM_UP; i++) await receiver.decrypt(sender.name, await sender.encrypt(DISTRIBUTION_ID, PLAINTEXT));

  const budget = seconds * 1000;
  const deadline = performance.now() + budget * 4;
  // Encrypt, timed in chunks; the messages are kept for the decrypt phase.
  const queue: Uint8Array[] = [];
  let encTime = 0;
  while (encTime < budget && queue.length < MAX_OPS && performance.now() < deadline) {
    const t0 = cpuMs();
    for (let i = 0; i < CHUNK; i++) queue.push(await sender.encrypt(DISTRIBUTION_ID, PLAINTEXT));
    encTime += cpuMs() - t0;
  }
  const encrypted = queue.length;

  // Decrypt in order, timed in chunks; when the queue runs low, refill it (untimed).
  let decTime = 0;
  let decrypted = 0;
  let next = 0;
  while (decTime < budget && decrypted < MAX_OPS && performance.now() < deadline) {
    if (queue.length - next < CHUNK) {
      queue.splice(0, next);
      next = 0;
      for (let i = 0; i < 10 * CHUNK; i++) queue.push(await sender.encrypt(DISTRIBUTION_ID, PLAINTEXT));
    }
    const t0 = cpuMs();
    for (let i = 0; i < CHUNK; i++) await receiver.decrypt(sender.name, queue[next++] as Uint8Array);
    decTime += cpuMs() - t0;
    decrypted += CHUNK;
  }
  return { encrypt: (encrypted * 1000) / encTime, decrypt: (decrypted * 1000) / decTime };
}

/**
 * Group encrypt and decrypt per CPU-second (100-byte messages) for Parley and for libsignal. `crypto` selects
 * the provider of Parley's side (default: the Node provider).
 */
export async function benchSenderKeys(options: { seconds?: number; crypto?: CryptoProvider } = {}): Promise<{ ours: SenderKeyRates; libsignal: SenderKeyRates }> {
  const seconds = options.seconds ?? Number(process.env.BENCH_SECONDS ?? 2);
  const ours = await measurePair(new ParleyMember('bench-sender', options.crypto), new ParleyMember('bench-receiver', options.crypto), seconds);
  const libsignal = await measurePair(new LibsignalMember('bench-sender'), new LibsignalMember('bench-receiver'), seconds);
  return { ours, libsignal };
}
