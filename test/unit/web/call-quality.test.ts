// The call quality module of the web app: reading getStats() entries (shaped as Chromium gives them) and the
// video ladder's adaptation to the estimated uplink and to packet loss.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { INITIAL_ADAPT_STATE, VIDEO_LADDER, adaptVideo, applyVideoStep, summarizeStats, type AdaptState } from '../../../src/web/model/call-quality.ts';

describe('summarizeStats', () => {
  it('adds up inbound and outbound media, finds the selected pair and its route', () => {
    const s = summarizeStats([
      { type: 'inbound-rtp', id: 'ia', kind: 'audio', bytesReceived: 4000, totalAudioEnergy: 0.25, totalSamplesDuration: 3.5 },
      { type: 'inbound-rtp', id: 'iv', kind: 'video', bytesReceived: 90_000, framesDecoded: 120, frameWidth: 640, frameHeight: 480 },
      { type: 'outbound-rtp', id: 'oa', kind: 'audio', bytesSent: 3900 },
      { type: 'outbound-rtp', id: 'ov', kind: 'video', bytesSent: 80_000, packetsSent: 300 },
      { type: 'remote-inbound-rtp', id: 'rv', kind: 'video', packetsLost: 6 },
      { type: 'local-candidate', id: 'L1', candidateType: 'host' },
      { type: 'local-candidate', id: 'L2', candidateType: 'relay' },
      { type: 'candidate-pair', id: 'P1', state: 'succeeded', nominated: true, localCandidateId: 'L1', availableOutgoingBitrate: 1_000_000, currentRoundTripTime: 0.2 },
      { type: 'candidate-pair', id: 'P2', state: 'succeeded', nominated: true, localCandidateId: 'L2', availableOutgoingBitrate: 300_000, currentRoundTripTime: 0.012 },
      { type: 'transport', id: 'T', selectedCandidatePairId: 'P2' },
      null,
      'junk',
    ]);
    assert.deepEqual(s, {
      audioBytesIn: 4000,
      videoBytesIn: 90_000,
      audioBytesOut: 3900,
      videoBytesOut: 80_000,
      framesDecoded: 120,
      frameWidth: 640,
      frameHeight: 480,
      audioEnergyIn: 0.25,
      audioSecondsIn: 3.5,
      availableOutgoingBitrate: 300_000,
      roundTripTimeMs: 12,
      videoPacketsSent: 300,
      videoPacketsLost: 6,
      route: 'relay',
    });
  });

  it('falls back to the nominated succeeded pair without a transport entry, and to zeros without media', () => {
    const s = summarizeStats([
      { type: 'local-candidate', id: 'L1', candidateType: 'srflx' },
      { type: 'candidate-pair', id: 'P0', state: 'failed', localCandidateId: 'L9' },
      { type: 'candidate-pair', id: 'P1', state: 'succeeded', nominated: true, localCandidateId: 'L1' },
      { type: 'inbound-rtp', id: 'old', mediaType: 'audio', bytesReceived: 10 },
    ]);
    assert.equal(s.route, 'srflx');
    assert.equal(s.audioBytesIn, 10);
    assert.equal(s.videoBytesIn, 0);
    assert.equal(s.availableOutgoingBitrate, undefined);
    assert.equal(s.roundTripTimeMs, undefined);
  });
});

describe('adaptVideo', () => {
  const sample = (kbps: number | undefined, sent: number, lost: number): { availableOutgoingBitrate: number | undefined; videoPacketsSent: number; videoPacketsLost: number } => ({
    availableOutgoingBitrate: kbps === undefined ? undefined : kbps * 1000,
    videoPacketsSent: sent,
    videoPacketsLost: lost,
  });

  it('steps down at once to what the estimate allows, the most frugal step below everything', () => {
    let s = adaptVideo(INITIAL_ADAPT_STATE, sample(400, 100, 0));
    assert.equal(s.step, 3); // 400 * 0.85 = 340 kbit/s: the 320 kbit/s step
    assert.equal(VIDEO_LADDER[s.step]?.scaleResolutionDownBy, 2);
    s = adaptVideo(s, sample(50, 200, 0));
    assert.equal(s.step, VIDEO_LADDER.length - 1);
  });

  it('steps down one more under heavy loss even when the estimate is high', () => {
    const s = adaptVideo({ ...INITIAL_ADAPT_STATE, sent: 1000, lost: 0 }, sample(5000, 1100, 20)); // 20 % lost
    assert.equal(s.step, INITIAL_ADAPT_STATE.step + 1);
    // Too few packets say nothing: no step for loss alone.
    const quiet = adaptVideo({ ...INITIAL_ADAPT_STATE, sent: 1000, lost: 0 }, sample(5000, 1010, 5));
    assert.equal(quiet.step, INITIAL_ADAPT_STATE.step);
  });

  it('steps up one at a time, only after three good samples in a row, and a lossy sample starts the count again', () => {
    let s: AdaptState = { step: 4, good: 0, sent: 0, lost: 0 };
    let sent = 0;
    const good = (): void => {
      sent += 100;
      s = adaptVideo(s, sample(3000, sent, s.lost));
    };
    good();
    good();
    assert.equal(s.step, 4);
    // 5 % loss: not heavy enough to step down, too much to count as good.
    sent += 100;
    s = adaptVideo(s, sample(3000, sent, s.lost + 5));
    assert.deepEqual([s.step, s.good], [4, 0]);
    good();
    good();
    good();
    assert.equal(s.step, 3);
    for (let i = 0; i < 9; i++) good();
    assert.equal(s.step, 0);
    for (let i = 0; i < 6; i++) good();
    assert.equal(s.step, 0, 'never above the best step');
  });

  it('holds without an estimate and without loss figures', () => {
    const s = adaptVideo({ step: 2, good: 0, sent: 0, lost: 0 }, sample(undefined, 0, 0));
    assert.equal(s.step, 2);
  });
});

describe('applyVideoStep', () => {
  it('sets maxBitrate and scaleResolutionDownBy of the first encoding, once', async () => {
    const set: unknown[] = [];
    const params = { encodings: [{ active: true } as { maxBitrate?: number; scaleResolutionDownBy?: number }] };
    const sender = {
      getParameters: () => params,
      setParameters: async (p: unknown) => {
        set.push(structuredClone(p));
      },
    } as unknown as RTCRtpSender;
    const step = VIDEO_LADDER[3] as (typeof VIDEO_LADDER)[number];
    assert.equal(await applyVideoStep(sender, step), true);
    assert.equal(await applyVideoStep(sender, step), false, 'unchanged: not set again');
    assert.deepEqual(set, [{ encodings: [{ active: true, maxBitrate: 320_000, scaleResolutionDownBy: 2 }] }]);
    const empty = { getParameters: () => ({ encodings: [] }), setParameters: async () => assert.fail('no encodings: nothing to set') } as unknown as RTCRtpSender;
    assert.equal(await applyVideoStep(empty, step), false);
  });
});
