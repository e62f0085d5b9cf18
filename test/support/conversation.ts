// A long 1:1 conversation over a hostile-but-honest network, for any two peers (Parley or libsignal):
// the direction changes every 1-6 messages; messages are delivered in shuffled batches of up to ~20, some
// are held back and delivered many turns later, some are dropped for good, and a few already-delivered
// ones are delivered again. Every delivered message must decrypt to its plaintext exactly once, and every
// repeated delivery must be refused as a duplicate. All choices come from a seeded Prng.
//
// What the Double Ratchet can and cannot take, and so what this network never does:
// - A receiver keeps at most MAX_RECEIVER_CHAINS (5) receiving chains; a message from a chain that has been
//   trimmed can no longer be decrypted (libsignal and Parley alike). Before a delivery would make the
//   receiver trim a chain that still has messages in flight, those messages are delivered first.
// - At most 2,000 skipped keys per chain: chains here stay far shorter (a chain ends at each direction change
//   that reaches the peer).
// Causality does the rest: a peer can only create a new sending chain after it has received from the
// other's newest chain, so the first message of a chain never arrives after a message of a later chain.
// Isomorphic: no Node APIs.
import { bytesEqual, toHex, utf8 } from '../../src/protocol/index.ts';
import { innerMessage, type Peer, type Wire } from './parley-peer.ts';
import type { Prng } from './prng.ts';

/** libsignal's (and Parley's) bound on receiving chains per session. */
export const RECEIVER_CHAINS = 5;

export type ConversationPeer = Pick<Peer, 'name' | 'encrypt' | 'decrypt'>;

export interface ConversationOptions {
  readonly rng: Prng;
  /** Messages to send in total (both directions). */
  readonly messages: number;
  /** The longest run of messages before the direction changes (default 6). */
  readonly maxRun?: number;
  /** The largest shuffled batch delivered at once (default 20). */
  readonly maxBatch?: number;
  /** Probability that a message is never delivered (default 0.05). */
  readonly dropRate?: number;
  /** Probability that a message is held back and delivered many turns later (default 0.08). */
  readonly holdRate?: number;
  /** Probability that the receiver gets a batch at the end of a turn (default 0.7). */
  readonly deliverRate?: number;
  /** Probability that an already-delivered message is delivered again after a delivery (default 0.02). */
  readonly duplicateRate?: number;
  /** Whether an error is the receiver's "duplicate message" error. */
  readonly isDuplicate: (err: unknown) => boolean;
  /**
   * Hex of the initiator's receiving chains right after processing the bundle: the responder's signed prekey
   * (33 bytes), which is the responder's first ratchet key.
   */
  readonly initiatorChains: readonly string[];
}

export interface ConversationStats {
  sent: number;
  delivered: number;
  dropped: number;
  /** Delivered after being held back. */
  late: number;
  /** Held-back messages delivered early because their chain was about to be trimmed. */
  forced: number;
  /** Delivered after a message the same sender sent later. */
  outOfOrder: number;
  duplicatesRefused: number;
  directionChanges: number;
  preKeyMessages: number;
  largestBatch: number;
}

interface Sent {
  readonly id: number;
  readonly from: ConversationPeer;
  readonly to: ConversationPeer;
  readonly plaintext: Uint8Array;
  readonly wire: Wire;
  readonly chain: string;
  readonly counter: number;
  /** Turn after which a held-back message may be delivered; undefined when not held. */
  releaseTurn: number | undefined;
  delivered: boolean;
}

/**
 * Runs the conversation. `initiator` must already have processed `responder`'s bundle; the responder sends
 * only once it has decrypted something. Throws an AssertionError-like Error naming the seed on the first
 * message that does not decrypt to its plaintext.
 */
export async function runConversation(
  initiator: ConversationPeer,
  responder: ConversationPeer,
  options: ConversationOptions,
): Promise<ConversationStats> {
  const rng = options.rng;
  const maxRun = options.maxRun ?? 6;
  const maxBatch = options.maxBatch ?? 20;
  const dropRate = options.dropRate ?? 0.05;
  const holdRate = options.holdRate ?? 0.08;
  const deliverRate = options.deliverRate ?? 0.7;
  const duplicateRate = options.duplicateRate ?? 0.02;
  const where = (m: Sent): string =>
    `seed ${rng.seed}: message #${m.id} ${m.from.name}->${m.to.name} (type ${m.wire.type}, counter ${m.counter}, chain ${m.chain.slice(0, 12)})`;

  const stats: ConversationStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    late: 0,
    forced: 0,
    outOfOrder: 0,
    duplicatesRefused: 0,
    directionChanges: 0,
    preKeyMessages: 0,
    largestBatch: 0,
  };
  const chains = new Map<string, string[]>([
    [initiator.name, [...options.initiatorChains]],
    [responder.name, []],
  ]);
  const pending = new Map<string, Sent[]>([
    [initiator.name, []],
    [responder.name, []],
  ]);
  const deliveredTo = new Map<string, Sent[]>([
    [initiator.name, []],
    [responder.name, []],
  ]);
  const newestDelivered = new Map<string, number>();
  const canSend = new Set([initiator.name]);
  const other = (p: ConversationPeer): ConversationPeer => (p === initiator ? responder : initiator);
  const get = <T>(map: Map<string, T>, key: string): T => map.get(key) as T;
  let nextId = 0;

  async function send(from: ConversationPeer, turn: number): Promise<void> {
    const to = other(from);
    const id = nextId++;
    const text = `#${id} ${from.name}->${to.name} `;
    const plaintext = new Uint8Array([...utf8(text), ...rng.bytes(rng.int(0, 40))]);
    const wire = await from.encrypt(to.name, plaintext);
    const inner = innerMessage(wire);
    const m: Sent = {
      id,
      from,
      to,
      plaintext,
      wire,
      chain: toHex(inner.senderRatchetKey.serialized),
      counter: inner.counter,
      releaseTurn: undefined,
      delivered: false,
    };
    stats.sent++;
    if (wire.type === 3) stats.preKeyMessages++;
    const fate = rng.next();
    if (fate < dropRate) {
      stats.dropped++;
      return;
    }
    if (fate < dropRate + holdRate) m.releaseTurn = turn + rng.int(3, 20);
    get(pending, to.name).push(m);
  }

  async function deliver(m: Sent, forced: boolean): Promise<void> {
    if (m.delivered) return;
    const to = m.to;
    const list = get(chains, to.name);
    if (!list.includes(m.chain) && list.length >= RECEIVER_CHAINS) {
      // This delivery makes the receiver trim its oldest chain: deliver what is still in flight on it first.
      const oldest = list[0];
      for (const early of get(pending, to.name).filter((p) => p.chain === oldest && !p.delivered)) await deliver(early, true);
    }
    let plaintext: Uint8Array;
    try {
      plaintext = await to.decrypt(m.from.name, m.wire);
    } catch (err) {
      throw new Error(`${where(m)} did not decrypt: ${String(err)}`, { cause: err });
    }
    if (!bytesEqual(plaintext, m.plaintext)) throw new Error(`${where(m)} decrypted to the wrong plaintext`);
    m.delivered = true;
    stats.delivered++;
    if (m.releaseTurn !== undefined) {
      stats.late++;
      if (forced) stats.forced++;
    }
    const newest = newestDelivered.get(m.from.name) ?? -1;
    if (m.id < newest) stats.outOfOrder++;
    else newestDelivered.set(m.from.name, m.id);
    if (!list.includes(m.chain)) {
      list.push(m.chain);
      if (list.length > RECEIVER_CHAINS) list.shift();
    }
    canSend.add(to.name);
    const done = get(deliveredTo, to.name);
    done.push(m);
    if (rng.chance(duplicateRate)) await redeliver(rng.pick(done.slice(-50)));
  }

  async function redeliver(m: Sent): Promise<void> {
    // Only a message whose chain the receiver still holds is refused as a duplicate; a trimmed chain gives a
    // different error (the message no longer decrypts at all), which is not what this checks.
    if (!get(chains, m.to.name).includes(m.chain)) return;
    try {
      await m.to.decrypt(m.from.name, m.wire);
    } catch (err) {
      if (options.isDuplicate(err)) {
        stats.duplicatesRefused++;
        return;
      }
      throw new Error(`${where(m)} delivered again: expected a duplicate-message error, got ${String(err)}`, { cause: err });
    }
    throw new Error(`${where(m)} delivered again decrypted a second time`);
  }

  async function deliverBatch(to: ConversationPeer, turn: number, all: boolean): Promise<void> {
    const queue = get(pending, to.name);
    const ready = queue.filter((m) => !m.delivered && (all || m.releaseTurn === undefined || m.releaseTurn <= turn));
    const batch = rng.shuffle(all ? ready : ready.slice(0, maxBatch));
    stats.largestBatch = Math.max(stats.largestBatch, batch.length);
    for (const m of batch) await deliver(m, false);
    pending.set(
      to.name,
      queue.filter((m) => !m.delivered),
    );
  }

  let sender = initiator;
  let turn = 0;
  while (stats.sent < options.messages) {
    turn++;
    if (canSend.has(sender.name)) {
      const run = rng.int(1, maxRun);
      for (let i = 0; i < run && stats.sent < options.messages; i++) await send(sender, turn);
      const receiver = other(sender);
      const waiting = get(pending, receiver.name).filter((m) => m.releaseTurn === undefined).length;
      if (rng.chance(deliverRate) || waiting >= maxBatch) await deliverBatch(receiver, turn, false);
    }
    sender = other(sender);
    stats.directionChanges++;
  }
  // Flush: everything not dropped arrives in the end, shuffled.
  while (get(pending, initiator.name).length + get(pending, responder.name).length > 0) {
    turn++;
    await deliverBatch(initiator, turn, true);
    await deliverBatch(responder, turn, true);
  }
  if (stats.delivered + stats.dropped !== stats.sent) {
    throw new Error(`seed ${rng.seed}: ${stats.sent} sent but ${stats.delivered} delivered and ${stats.dropped} dropped`);
  }
  return stats;
}
