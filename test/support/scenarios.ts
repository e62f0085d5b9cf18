// Scripted two-party scenarios whose outcome is written down as a transcript, so that the same script can be
// run with libsignal on both sides (the expected behaviour), with Parley on both sides, and mixed, and the
// transcripts compared line by line. Isomorphic: no Node APIs.
//
// Script steps (strings, to keep scripts readable):
//   'A+B'   A fetches B's bundle (with a fresh one-time prekey) and processes it; 'A+B!' without one;
//           'A+B=' processes the bundle A last fetched from B once more (its one-time prekey may be used up).
//   'A:a1'  A encrypts a message labelled a1 for B (the label's sender is A).
//   '>a1'   a1 is delivered to its recipient.
// Transcript lines: 'A+B'; 'A:a1 prekey 0/0' or 'A:a1 whisper 2/1' (the ciphertext type sent, then the
// wrapped SignalMessage's counter / previous counter as on the wire); '>a1 ok' or '>a1 <error kind>'
// (kinds come from the caller's classifier: 'duplicate', 'untrusted', 'fail', ...).
import { bytesEqual, CiphertextMessageType, utf8 } from '../../src/protocol/index.ts';
import { innerMessage, type BundleBytes, type Peer, type Wire } from './parley-peer.ts';

export type Side = 'A' | 'B';
/** Maps an error thrown by either implementation to a coarse, implementation-independent kind. */
export type Classifier = (err: unknown) => string;

/** A script and the transcript libsignal 0.90 produces for it on both sides (checked in the interop tests). */
export interface Scenario {
  readonly script: readonly string[];
  readonly libsignal: readonly string[];
}

/**
 * Simultaneous initiation: both sides process the other's bundle and send PreKey messages before receiving
 * anything; then both receive; then both send at once again (crossing once more); then they take turns.
 * a2, a PreKey message of A's first session, is delivered only after the sessions have healed; at the end
 * three messages are delivered again.
 */
export const SIMULTANEOUS_INITIATION: Scenario = {
  script: [
    'A+B', 'B+A',
    'A:a1', 'A:a2', 'B:b1', 'B:b2',
    '>a1', '>b1', '>b2',
    'A:a3', 'B:b3', '>b3', '>a3',
    'A:a4', '>a4', 'B:b4', '>b4',
    'A:a5', 'A:a6', '>a6', 'B:b5', '>b5', '>a5',
    'B:b6', '>b6', 'A:a7', '>a7',
    '>a2',
    'B:b7', '>b7', 'A:a8', '>a8',
    '>b1', '>a3', '>a2',
  ],
  libsignal: [
    'A+B', 'B+A', 'A:a1 prekey 0/0', 'A:a2 prekey 1/0', 'B:b1 prekey 0/0', 'B:b2 prekey 1/0', '>a1 ok',
    '>b1 ok', '>b2 ok', 'A:a3 whisper 0/0', 'B:b3 whisper 0/0', '>b3 ok', '>a3 ok', 'A:a4 whisper 0/1',
    '>a4 ok', 'B:b4 whisper 0/0', '>b4 ok', 'A:a5 whisper 0/0', 'A:a6 whisper 1/0', '>a6 ok', 'B:b5 whisper 0/0',
    '>b5 ok', '>a5 ok', 'B:b6 whisper 1/0', '>b6 ok', 'A:a7 whisper 0/1', '>a7 ok', '>a2 ok', 'B:b7 whisper 0/1',
    '>b7 ok', 'A:a8 whisper 0/0', '>a8 ok', '>b1 duplicate', '>a3 duplicate', '>a2 duplicate',
  ],
};

/**
 * Re-initiation: an established session; messages x* (A) and y* (B) are sent on it but held back; A then
 * processes a new bundle of B's (the old session is archived) and both talk on the new session; then the
 * held messages of the old session arrive, interleaved with new traffic; finally some are delivered again.
 */
export const REINITIATION: Scenario = {
  script: [
    'A+B', 'A:a1', '>a1', 'B:b1', '>b1', 'A:a2', 'B:b2', '>a2', '>b2',
    'A:x1', 'A:x2', 'B:y1', 'B:y2',
    'A+B',
    'A:a3', '>a3', 'B:b3', '>b3',
    '>y1', '>x1',
    'A:a4', '>a4', 'B:b4', '>b4',
    '>y2', '>x2',
    'A:a5', '>a5', 'B:b5', '>b5',
    '>x1', '>a1', '>a3', '>y2',
    'B:b6', '>b6', 'A:a6', '>a6',
  ],
  libsignal: [
    'A+B', 'A:a1 prekey 0/0', '>a1 ok', 'B:b1 whisper 0/0', '>b1 ok', 'A:a2 whisper 0/0', 'B:b2 whisper 1/0',
    '>a2 ok', '>b2 ok', 'A:x1 whisper 1/0', 'A:x2 whisper 2/0', 'B:y1 whisper 0/1', 'B:y2 whisper 1/1',
    'A+B', 'A:a3 prekey 0/0', '>a3 ok', 'B:b3 whisper 0/0', '>b3 ok', '>y1 ok', '>x1 ok', 'A:a4 whisper 0/2',
    '>a4 ok', 'B:b4 whisper 0/1', '>b4 ok', '>y2 ok', '>x2 ok', 'A:a5 whisper 0/0', '>a5 ok', 'B:b5 whisper 0/0',
    '>b5 ok', '>x1 duplicate', '>a1 duplicate', '>a3 duplicate', '>y2 duplicate', 'B:b6 whisper 1/0',
    '>b6 ok', 'A:a6 whisper 0/0', '>a6 ok',
  ],
};

/**
 * A stale bundle: A processes the same bundle of B's twice, so the second session names a one-time prekey
 * that B has already used. B cannot decrypt on it; B's reply on the first session makes A go back to it.
 */
export const STALE_BUNDLE: Scenario = {
  script: [
    'A+B', 'A:a1', '>a1', 'B:b1', '>b1',
    'A+B=',
    'A:a2', '>a2',
    'B:b2', '>b2',
    'A:a3', '>a3', 'B:b3', '>b3',
    '>a2',
  ],
  libsignal: [
    'A+B', 'A:a1 prekey 0/0', '>a1 ok', 'B:b1 whisper 0/0', '>b1 ok', 'A+B=', 'A:a2 prekey 0/0', '>a2 fail',
    'B:b2 whisper 1/0', '>b2 ok', 'A:a3 whisper 0/0', '>a3 ok', 'B:b3 whisper 0/1', '>b3 ok', '>a2 fail',
  ],
};

/**
 * The receiving-chain bound: x1 travels on A's second sending chain and y1 on its fourth; B then receives
 * from A's sixth and seventh chains, so it keeps only chains 3-7 (MAX_RECEIVER_CHAINS = 5). y1 still
 * decrypts; x1 no longer can.
 */
export const TRIMMED_RECEIVER_CHAIN: Scenario = {
  script: [
    'A+B', 'A:a1', '>a1', 'B:b1', '>b1',
    'A:x1', 'A:a2', '>a2', 'B:b2', '>b2',
    'A:a3', '>a3', 'B:b3', '>b3',
    'A:y1', 'A:a4', '>a4', 'B:b4', '>b4',
    'A:a5', '>a5', 'B:b5', '>b5',
    'A:a6', '>a6', 'B:b6', '>b6',
    'A:a7', '>a7',
    '>y1', '>x1',
    'B:b7', '>b7', 'A:a8', '>a8',
  ],
  libsignal: [
    'A+B', 'A:a1 prekey 0/0', '>a1 ok', 'B:b1 whisper 0/0', '>b1 ok', 'A:x1 whisper 0/0', 'A:a2 whisper 1/0',
    '>a2 ok', 'B:b2 whisper 0/0', '>b2 ok', 'A:a3 whisper 0/1', '>a3 ok', 'B:b3 whisper 0/0', '>b3 ok',
    'A:y1 whisper 0/0', 'A:a4 whisper 1/0', '>a4 ok', 'B:b4 whisper 0/0', '>b4 ok', 'A:a5 whisper 0/1',
    '>a5 ok', 'B:b5 whisper 0/0', '>b5 ok', 'A:a6 whisper 0/0', '>a6 ok', 'B:b6 whisper 0/0', '>b6 ok',
    'A:a7 whisper 0/0', '>a7 ok', '>y1 ok', '>x1 fail', 'B:b7 whisper 0/0', '>b7 ok', 'A:a8 whisper 0/0',
    '>a8 ok',
  ],
};

const REINITIATIONS = 40;
/**
 * The archive bound (ARCHIVED_STATES_MAX_LENGTH = 40): sessions 1 and 2 are set up and acknowledged, each
 * leaving a held-back message; then 40 more sessions are set up (without one-time prekeys). B's record then
 * holds the newest session and 40 archived ones: session 2 is the oldest kept, session 1 is gone.
 */
export const ARCHIVE_LIMIT: Scenario = (() => {
  const script = ['A+B!', 'A:s1', '>s1', 'B:r1', '>r1', 'A:late1', 'A+B!', 'A:s2', '>s2', 'B:r2', '>r2', 'A:late2'];
  const libsignal = [
    'A+B!', 'A:s1 prekey 0/0', '>s1 ok', 'B:r1 whisper 0/0', '>r1 ok', 'A:late1 whisper 0/0',
    'A+B!', 'A:s2 prekey 0/0', '>s2 ok', 'B:r2 whisper 0/0', '>r2 ok', 'A:late2 whisper 0/0',
  ];
  for (let i = 1; i <= REINITIATIONS; i++) {
    script.push('A+B!', `A:n${i}`, `>n${i}`);
    libsignal.push('A+B!', `A:n${i} prekey 0/0`, `>n${i} ok`);
  }
  script.push('>late1', '>late2', 'B:r3', '>r3');
  libsignal.push('>late1 fail', '>late2 ok', 'B:r3 whisper 0/0', '>r3 ok');
  return { script, libsignal };
})();

/** All scripted scenarios by name. */
export const SCENARIOS: Readonly<Record<string, Scenario>> = {
  'simultaneous initiation': SIMULTANEOUS_INITIATION,
  're-initiation with late messages from the archived session': REINITIATION,
  'a stale bundle whose one-time prekey is used up': STALE_BUNDLE,
  'a message on a trimmed receiving chain (MAX_RECEIVER_CHAINS)': TRIMMED_RECEIVER_CHAIN,
  'a message on a session beyond the archive (ARCHIVED_STATES_MAX_LENGTH)': ARCHIVE_LIMIT,
};

/** Runs `script` with `peers` and returns its transcript. A decrypted message must carry its own plaintext. */
export async function runScript(peers: Record<Side, Peer>, script: readonly string[], classify: Classifier): Promise<string[]> {
  const transcript: string[] = [];
  const sent = new Map<string, { from: Side; wire: Wire; plaintext: Uint8Array }>();
  const bundles = new Map<Side, BundleBytes>();
  const other = (s: Side): Side => (s === 'A' ? 'B' : 'A');
  for (const step of script) {
    let m: RegExpMatchArray | null;
    if ((m = /^([AB])\+([AB])([!=]?)$/.exec(step))) {
      const by = m[1] as Side;
      const of = m[2] as Side;
      const bundle = m[3] === '=' ? bundles.get(by) : await peers[of].bundle({ oneTime: m[3] !== '!' });
      if (!bundle) throw new Error(`script step ${step}: no earlier bundle`);
      bundles.set(by, bundle);
      await peers[by].processBundle(peers[of].name, bundle);
      transcript.push(step);
    } else if ((m = /^([AB]):(\w+)$/.exec(step))) {
      const from = m[1] as Side;
      const label = m[2] as string;
      const plaintext = utf8(`${label} from ${from}`);
      const wire = await peers[from].encrypt(peers[other(from)].name, plaintext);
      sent.set(label, { from, wire, plaintext });
      const inner = innerMessage(wire);
      transcript.push(`${step} ${wire.type === CiphertextMessageType.PreKey ? 'prekey' : 'whisper'} ${inner.counter}/${inner.previousCounter}`);
    } else if ((m = /^>(\w+)$/.exec(step))) {
      const msg = sent.get(m[1] as string);
      if (!msg) throw new Error(`script delivers ${m[1]} before sending it`);
      let outcome: string;
      try {
        const plaintext = await peers[other(msg.from)].decrypt(peers[msg.from].name, msg.wire);
        outcome = bytesEqual(plaintext, msg.plaintext) ? 'ok' : 'wrong-plaintext';
      } catch (err) {
        outcome = classify(err);
      }
      transcript.push(`${step} ${outcome}`);
    } else {
      throw new Error(`bad script step ${step}`);
    }
  }
  return transcript;
}
