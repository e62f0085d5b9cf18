// Call signalling without media: the CallMessage wire format (round trip, malformed calls refused with
// CLIENT_INVALID_CONTENT) and the call manager's rules for received messages (stale offers recorded as
// missed calls, replays, messages from the future, from the wrong account or device, "answered elsewhere"
// only from our own devices), on the in-memory store. Nothing here creates a peer connection: an incoming
// call only gets one when answered (the end-to-end tests in test/integration/calls.test.ts do that).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { CallManager, type CallEvent, type CallRejectedEvent } from '../../../src/client/calls/manager.ts';
import { callMessageInit, parseCallMessage, type CallSignal } from '../../../src/client/calls/wire.ts';
import { ClientError } from '../../../src/client/errors.ts';
import type { Sender } from '../../../src/client/events.ts';
import { CallMessageSchema, type CallMessage_Hangup_Reason } from '../../../src/client/gen/content_pb.ts';
import type { AccountId } from '../../../src/client/ids.ts';
import { InMemoryClientStore } from '../../../src/client/store/memory.ts';
import type { MessageRecord } from '../../../src/client/store/types.ts';

const SELF = '11111111-1111-4111-8111-111111111111' as AccountId;
const PEER = '22222222-2222-4222-8222-222222222222' as AccountId;
const OTHER = '33333333-3333-4333-8333-333333333333' as AccountId;
const CALL_ID = '00112233445566778899aabbccddeeff';
const SDP = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n';

const signal = (body: Partial<CallSignal> & Pick<CallSignal, 'kind'>): CallSignal =>
  ({ callId: CALL_ID, destinationDeviceId: 0, groupId: undefined, participants: [], ...body }) as CallSignal;

const from = (accountId: AccountId, deviceId = 1): Sender => ({ accountId, deviceId, number: undefined, numberVerified: false });

function roundTrip(s: CallSignal): CallSignal {
  return parseCallMessage(fromBinary(CallMessageSchema, toBinary(CallMessageSchema, create(CallMessageSchema, callMessageInit(s)))));
}

describe('CallMessage wire format', () => {
  it('round-trips every kind', () => {
    const kinds: CallSignal[] = [
      signal({ kind: 'offer', sdp: SDP, media: 'video' }),
      signal({ kind: 'answer', sdp: SDP, destinationDeviceId: 3 }),
      signal({ kind: 'ice', candidates: [{ candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0, usernameFragment: 'abcd' }] }),
      signal({ kind: 'ringing' }),
      signal({ kind: 'busy' }),
      signal({ kind: 'hangup', reason: 'answered-elsewhere', deviceId: 2 }),
      signal({ kind: 'hangup', reason: 'declined', deviceId: 1, groupId: 'ab'.repeat(16) as never, participants: [{ accountId: PEER, deviceId: 1 }] }),
    ];
    for (const s of kinds) assert.deepEqual(roundTrip(s), s);
  });

  it('refuses malformed calls with CLIENT_INVALID_CONTENT', () => {
    const bad: Array<[string, Parameters<typeof create<typeof CallMessageSchema>>[1]]> = [
      ['short call id', { callId: new Uint8Array(8), kind: { case: 'ringing', value: {} } }],
      ['no kind', { callId: new Uint8Array(16) }],
      ['SDP that is not SDP', { callId: new Uint8Array(16), kind: { case: 'offer', value: { sdp: 'hello' } } }],
      ['huge SDP', { callId: new Uint8Array(16), kind: { case: 'answer', value: { sdp: `v=0${'a'.repeat(40_000)}` } } }],
      ['empty candidate list', { callId: new Uint8Array(16), kind: { case: 'ice', value: { candidates: [] } } }],
      ['not a candidate line', { callId: new Uint8Array(16), kind: { case: 'ice', value: { candidates: [{ candidate: 'rm -rf /' }] } } }],
      ['too many candidates', { callId: new Uint8Array(16), kind: { case: 'ice', value: { candidates: Array.from({ length: 33 }, () => ({ candidate: 'candidate:1' })) } } }],
      ['unknown reason', { callId: new Uint8Array(16), kind: { case: 'hangup', value: { reason: 99 as CallMessage_Hangup_Reason } } }],
      ['malformed group id', { callId: new Uint8Array(16), groupId: 'nope', kind: { case: 'ringing', value: {} } }],
      ['participants without a group', { callId: new Uint8Array(16), participants: [{ accountId: PEER, deviceId: 1 }], kind: { case: 'ringing', value: {} } }],
      ['nine participants', { callId: new Uint8Array(16), groupId: 'ab'.repeat(16), participants: Array.from({ length: 9 }, () => ({ accountId: PEER, deviceId: 1 })), kind: { case: 'ringing', value: {} } }],
      ['an SFU call', { callId: new Uint8Array(16), topology: 1, kind: { case: 'ringing', value: {} } }],
    ];
    for (const [what, init] of bad) {
      assert.throws(() => parseCallMessage(create(CallMessageSchema, init)), (e: unknown) => ClientError.is(e, 'CLIENT_INVALID_CONTENT'), what);
    }
  });
});

/** A manager over an in-memory store whose sends are recorded (what the Client would hand to the outbox). */
function manager(now: { t: number }) {
  const store = new InMemoryClientStore();
  const sent: Array<{ to: AccountId; signal: CallSignal; durable: boolean }> = [];
  const calls: CallEvent[] = [];
  const rejected: CallRejectedEvent[] = [];
  const recorded: MessageRecord[] = [];
  const m = new CallManager(
    {
      self: { accountId: SELF, deviceId: 1 },
      store,
      now: () => now.t,
      randomBytes: (n) => new Uint8Array(n).fill(7),
      send: async (to, s, durable) => {
        sent.push({ to, signal: s, durable });
        return now.t;
      },
      hasOtherDevices: async () => false,
      turn: async () => undefined,
      emitCall: (e) => calls.push(e),
      emitRejected: (e) => rejected.push(e),
      emitMessage: (msg) => recorded.push(msg),
      onError: (e) => {
        throw e;
      },
    },
    { ringTimeoutMs: 45_000 },
  );
  return { m, store, sent, calls, rejected, recorded };
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 10));

describe('CallManager: received call messages', () => {
  it('rings on a fresh offer (ringing goes back to the calling device, ephemeral) and records a missed call when the caller hangs up', async () => {
    const now = { t: 1_000_000 };
    const { m, sent, calls, recorded } = manager(now);
    m.handle(from(PEER, 2), { timestamp: now.t - 500, signal: signal({ kind: 'offer', sdp: SDP, media: 'audio' }), error: undefined });
    assert.deepEqual(calls.map((e) => [e.type, e.call.state, e.call.peerDeviceId]), [['incoming', 'ringing', 2]]);
    assert.deepEqual(sent.map((s) => [s.to, s.signal.kind, s.signal.destinationDeviceId, s.durable]), [[PEER, 'ringing', 2, false]]);
    m.handle(from(PEER, 2), { timestamp: now.t, signal: signal({ kind: 'hangup', reason: 'normal', deviceId: 2 }), error: undefined });
    await settle();
    const end = calls.at(-1)?.call.end;
    assert.deepEqual([end?.reason, end?.by, end?.outcome], ['normal', 'remote', 'missed']);
    assert.equal(recorded.length, 1);
    assert.deepEqual([recorded[0]?.kind, recorded[0]?.id, recorded[0]?.direction, recorded[0]?.call?.outcome], ['call', `${PEER}:${now.t - 500}`, 'incoming', 'missed']);
  });

  it('records an offer older than the ring timeout as a missed call without ringing', async () => {
    const now = { t: 10_000_000 };
    const { m, calls, recorded, sent } = manager(now);
    m.handle(from(PEER), { timestamp: now.t - 60_000, signal: signal({ kind: 'offer', sdp: SDP, media: 'video' }), error: undefined });
    await settle();
    assert.deepEqual(calls.map((e) => e.type), ['ended']);
    assert.equal(sent.length, 0);
    assert.deepEqual([recorded[0]?.call?.outcome, recorded[0]?.call?.media], ['missed', 'video']);
  });

  it('refuses a replayed offer, messages from the future, stale ones, and ones from another account or device', async () => {
    const now = { t: 5_000_000 };
    const { m, rejected, calls } = manager(now);
    const offer = signal({ kind: 'offer', sdp: SDP, media: 'audio' });
    m.handle(from(PEER, 1), { timestamp: now.t + 3_600_000, signal: offer, error: undefined });
    m.handle(from(PEER, 1), { timestamp: now.t, signal: offer, error: undefined });
    const call = calls[0]?.call;
    assert.equal(call?.state, 'ringing');
    m.handle(from(OTHER, 1), { timestamp: now.t, signal: signal({ kind: 'hangup', reason: 'normal', deviceId: 1 }), error: undefined });
    m.handle(from(PEER, 4), { timestamp: now.t, signal: signal({ kind: 'hangup', reason: 'normal', deviceId: 4 }), error: undefined });
    m.handle(from(PEER, 1), { timestamp: now.t - 120_000, signal: signal({ kind: 'hangup', reason: 'normal', deviceId: 1 }), error: undefined });
    m.handle(from(PEER, 1), { timestamp: now.t, signal: signal({ kind: 'hangup', reason: 'answered-elsewhere', deviceId: 9 }), error: undefined });
    // Only the last one ended the call (the caller saying another device of ours answered).
    assert.equal(call?.end?.outcome, 'answered-elsewhere');
    m.handle(from(PEER, 1), { timestamp: now.t + 1, signal: offer, error: undefined });
    m.handle(from(PEER, 1), { timestamp: now.t, signal: undefined, error: new ClientError('CLIENT_INVALID_CONTENT', 'x') });
    assert.deepEqual(rejected.map((r) => r.reason), ['future', 'wrong-peer', 'wrong-device', 'stale', 'replayed', 'malformed']);
    assert.equal(m.active.length, 0);
  });

  it('takes "answered elsewhere" only from our own devices, and ignores messages addressed to another of our devices', () => {
    const now = { t: 7_000_000 };
    const { m, rejected, calls } = manager(now);
    m.handle(from(PEER, 1), { timestamp: now.t, signal: signal({ kind: 'offer', sdp: SDP, media: 'audio' }), error: undefined });
    m.handle(from(PEER, 1), { timestamp: now.t, signal: signal({ kind: 'hangup', reason: 'normal', deviceId: 1, destinationDeviceId: 2 }), error: undefined });
    assert.equal(calls[0]?.call.state, 'ringing', 'a message for device 2 changes nothing here');
    m.handle(from(SELF, 2), { timestamp: now.t, signal: signal({ kind: 'answer', sdp: SDP }), error: undefined });
    assert.deepEqual(rejected.map((r) => r.reason), ['not-own-device']);
    m.handle(from(SELF, 2), { timestamp: now.t, signal: signal({ kind: 'hangup', reason: 'declined-elsewhere', deviceId: 2 }), error: undefined });
    assert.deepEqual([calls[0]?.call.end?.reason, calls[0]?.call.end?.outcome], ['declined-elsewhere', 'declined']);
  });

  it('answers busy to a second offer while a call rings, and records it missed', async () => {
    const now = { t: 9_000_000 };
    const { m, sent, calls, recorded } = manager(now);
    m.handle(from(PEER, 1), { timestamp: now.t, signal: signal({ kind: 'offer', sdp: SDP, media: 'audio' }), error: undefined });
    m.handle(from(OTHER, 3), { timestamp: now.t, signal: signal({ kind: 'offer', sdp: SDP, media: 'audio', callId: 'ff'.repeat(16) }), error: undefined });
    await settle();
    assert.deepEqual(sent.at(-1) && [sent.at(-1)?.to, sent.at(-1)?.signal.kind, sent.at(-1)?.signal.destinationDeviceId], [OTHER, 'busy', 3]);
    assert.equal(m.active.length, 1);
    assert.deepEqual(calls.map((e) => e.type), ['incoming', 'ended']);
    assert.deepEqual([recorded[0]?.conversationId, recorded[0]?.call?.outcome, recorded[0]?.call?.reason], [OTHER, 'missed', 'busy']);
    m.close();
  });
});
