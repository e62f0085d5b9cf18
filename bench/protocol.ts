// npm run bench:protocol — Parley's protocol core against libsignal-client 0.90.0, in one run.
// Prints, for both: sessions established per second (bundle processing + first message + its
// decryption), 1:1 encrypt and decrypt per second (100-byte messages, direction changes with ratchet
// steps), sender-key encrypt and decrypt per second, and the ratio ours/libsignal for each.
// Every loop is bounded in count and time.
import { LibsignalParty, ParleyParty, type BundleBytes, type Party, type Wire } from '../test/interop/support/parties.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const PLAINTEXT = new Uint8Array(100).fill(0x61);

interface Rates {
  sessions: number;
  encrypt: number;
  decrypt: number;
}

let serial = 0;
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Session setup rate: Alice processes a fresh bundle of a fresh Bob, encrypts, Bob decrypts. */
async function benchSessions(make: (name: string) => Promise<Party>): Promise<number> {
  // Bobs and their bundles are made outside the timed part; only the PQXDH work is measured.
  const pool: { bob: Party; bundle: BundleBytes }[] = [];
  const alice = await make('alice');
  let timed = 0;
  let count = 0;
  const deadline = now() + SECONDS * 1000 * 3;
  while (timed < SECONDS * 1000 && count < 5000 && now() < deadline) {
    if (pool.length === 0) {
      for (let i = 0; i < 50; i++) {
        const bob = await make(`bob${serial++}`);
        pool.push({ bob, bundle: await bob.bundle() });
      }
    }
    const { bob, bundle } = pool.pop() as { bob: Party; bundle: BundleBytes };
    const t0 = now();
    await alice.processBundle(bob.name, bundle);
    const wire = await alice.encrypt(bob.name, PLAINTEXT);
    await bob.decrypt(alice.name, wire);
    timed += now() - t0;
    count++;
  }
  return (count * 1000) / timed;
}

/** 1:1 rates over a conversation that changes direction every `run` messages (each change is a ratchet step). */
async function benchConversation(make: (name: string) => Promise<Party>, run: number): Promise<{ encrypt: number; decrypt: number }> {
  const a = await make(`a${serial++}`);
  const b = await make(`b${serial++}`);
  await a.processBundle(b.name, await b.bundle());
  await b.decrypt(a.name, await a.encrypt(b.name, PLAINTEXT));
  await a.decrypt(b.name, await b.encrypt(a.name, PLAINTEXT));
  let encTime = 0;
  let decTime = 0;
  let count = 0;
  const deadline = now() + SECONDS * 1000 * 4;
  while (encTime + decTime < SECONDS * 2000 && count < 200_000 && now() < deadline) {
    const [s, r] = Math.floor(count / run) % 2 === 0 ? [a, b] : [b, a];
    const t0 = now();
    const wire: Wire = await s.encrypt(r.name, PLAINTEXT);
    const t1 = now();
    await r.decrypt(s.name, wire);
    const t2 = now();
    encTime += t1 - t0;
    decTime += t2 - t1;
    count++;
  }
  return { encrypt: (count * 1000) / encTime, decrypt: (count * 1000) / decTime };
}

async function measure(make: (name: string) => Promise<Party>): Promise<Rates> {
  // Warm-up (JIT, native module, key caches).
  await benchConversation(make, 5);
  const sessions = await benchSessions(make);
  const conv = await benchConversation(make, 5);
  return { sessions, ...conv };
}

const fmt = (n: number): string => n.toFixed(0).padStart(10);

async function main(): Promise<void> {
  const ours = await measure((name) => ParleyParty.create(name));
  const theirs = await measure((name) => Promise.resolve(LibsignalParty.create(name)));
  const rows: [string, number, number][] = [
    ['sessions established/s', ours.sessions, theirs.sessions],
    ['1:1 encrypt/s', ours.encrypt, theirs.encrypt],
    ['1:1 decrypt/s', ours.decrypt, theirs.decrypt],
  ];
  try {
    const { benchSenderKeys } = (await import('./sender-keys.ts'));
    const sk = await benchSenderKeys();
    rows.push(['sender-key encrypt/s', sk.ours.encrypt, sk.libsignal.encrypt]);
    rows.push(['sender-key decrypt/s', sk.ours.decrypt, sk.libsignal.decrypt]);
  } catch (err) {
    console.error('sender-key benchmark unavailable:', err);
  }
  console.log(`protocol benchmark (Node ${process.version}, ${SECONDS}s per measure, 100-byte messages, direction change every 5 messages)`);
  console.log(`${'operation'.padEnd(26)}${'parley'.padStart(10)}${'libsignal'.padStart(10)}   ratio`);
  for (const [name, o, l] of rows) console.log(`${name.padEnd(26)}${fmt(o)}${fmt(l)}   ${(o / l).toFixed(2)}x`);
}

await main();
