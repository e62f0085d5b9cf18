// The active speaker of a group call (src/web/model/active-speaker.ts): levels over time in, the speaker and
// who is speaking out, with the threshold, the holds that keep the big picture from flickering, muted
// participants, and the level computed from getStats() totals.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SPEAKER_TUNING, SpeakerDetector, levelBetween } from '../../../src/web/model/active-speaker.ts';

const LOUD = 0.1;
const QUIET = 0.001;

/** Feeds one sample a second per participant (as the stats arrive) from `from` to `to` seconds; returns the last state. */
function run(d: SpeakerDetector, from: number, to: number, levels: Record<string, number | 'muted'>): ReturnType<SpeakerDetector['state']> {
  let state = d.state(from * 1000);
  for (let s = from; s <= to; s++) {
    for (const [id, l] of Object.entries(levels)) d.observe(s * 1000, id, l === 'muted' ? 0 : l, l === 'muted');
    state = d.state(s * 1000);
  }
  return state;
}

describe('SpeakerDetector', () => {
  it('has no speaker until someone is above the threshold; the first one to speak takes the empty stage at once', () => {
    const d = new SpeakerDetector();
    assert.deepEqual(run(d, 0, 3, { a: QUIET, b: QUIET }), { speaker: undefined, speaking: [] });
    d.observe(4000, 'a', QUIET);
    d.observe(4000, 'b', LOUD);
    assert.deepEqual(d.state(4000), { speaker: 'b', speaking: ['b'] });
  });

  it('follows a change of speaker only after the new one spoke for a while and the old one stopped', () => {
    const d = new SpeakerDetector();
    assert.equal(run(d, 0, 5, { a: LOUD, b: QUIET, c: QUIET }).speaker, 'a');
    // b starts while a goes on: a keeps the stage.
    let s = run(d, 6, 9, { a: LOUD, b: LOUD, c: QUIET });
    assert.equal(s.speaker, 'a');
    assert.deepEqual([...s.speaking].sort(), ['a', 'b']);
    // a stops: still "speaking" for the hold, then b (speaking for long enough) takes over.
    d.observe(10_000, 'a', QUIET);
    d.observe(10_000, 'b', LOUD);
    s = d.state(10_000);
    assert.equal(s.speaker, 'a', 'the speaking hold of a has not run out');
    s = run(d, 11, 12, { a: QUIET, b: LOUD, c: QUIET });
    assert.equal(s.speaker, 'b');
    assert.deepEqual(s.speaking, ['b']);
  });

  it('does not switch on one loud sample of someone else (a cough), nor while the speaker pauses briefly', () => {
    const d = new SpeakerDetector();
    run(d, 0, 4, { a: LOUD, b: QUIET });
    // a pauses for one sample; b coughs once.
    d.observe(5000, 'a', QUIET);
    d.observe(5000, 'b', LOUD);
    assert.equal(d.state(5000).speaker, 'a');
    d.observe(6000, 'a', QUIET);
    d.observe(6000, 'b', QUIET);
    assert.equal(d.state(6000).speaker, 'a');
    // Silence keeps the last speaker on the stage.
    assert.equal(run(d, 7, 20, { a: QUIET, b: QUIET }).speaker, 'a');
    assert.deepEqual(d.state(20_000).speaking, []);
  });

  it('keeps a new speaker for the minimum time even if they stop at once', () => {
    const d = new SpeakerDetector({ ...SPEAKER_TUNING, minSpeakerMs: 5_000 });
    run(d, 0, 2, { a: LOUD, b: QUIET });
    run(d, 3, 6, { a: QUIET, b: LOUD });
    const at = 6_000;
    assert.equal(d.state(at).speaker, 'b');
    // b stops, a speaks again straight away: b keeps the stage until 5 s after taking it.
    let s = run(d, 7, 9, { a: LOUD, b: QUIET });
    assert.equal(s.speaker, 'b');
    s = run(d, 10, 12, { a: LOUD, b: QUIET });
    assert.equal(s.speaker, 'a');
  });

  it('never makes a muted participant the speaker, and hands the stage on when the speaker mutes', () => {
    const d = new SpeakerDetector();
    // c is muted: whatever level comes with it, it is not speaking.
    let s = run(d, 0, 3, { a: QUIET, b: QUIET, c: 'muted' });
    d.observe(4000, 'c', LOUD, true);
    s = d.state(4000);
    assert.deepEqual(s, { speaker: undefined, speaking: [] });
    s = run(d, 5, 8, { a: LOUD, b: LOUD, c: 'muted' });
    const first = s.speaker;
    assert.ok(first === 'a' || first === 'b');
    const other = first === 'a' ? 'b' : 'a';
    // The speaker mutes while the other speaks: the stage moves without waiting for holds.
    d.observe(9000, first, 0, true);
    d.observe(9000, other, LOUD);
    assert.equal(d.state(9000).speaker, other);
  });

  it('picks the loudest of several contenders, and forgets those who left', () => {
    const d = new SpeakerDetector();
    run(d, 0, 1, { a: LOUD });
    run(d, 2, 6, { a: QUIET, b: 0.05, c: 0.3 });
    assert.equal(d.state(6000).speaker, 'c');
    d.retain(['a', 'b']);
    // c left: the stage is empty, and b, speaking, takes it at once.
    assert.deepEqual(d.state(6000), { speaker: 'b', speaking: ['b'] });
    d.retain([]);
    assert.deepEqual(d.state(6000), { speaker: undefined, speaking: [] });
  });
});

describe('levelBetween', () => {
  it('is the RMS level of the audio received between two readings of totalAudioEnergy / totalSamplesDuration', () => {
    // 2 s at level 0.1: energy grows by 0.1² × 2.
    assert.equal(levelBetween({ energy: 0.5, duration: 10 }, { energy: 0.5 + 0.02, duration: 12 }).toFixed(6), '0.100000');
    assert.equal(levelBetween(undefined, { energy: 0.04, duration: 1 }).toFixed(6), '0.200000');
  });

  it('is 0 without new audio, for silence, or for totals that went backwards (a new connection)', () => {
    assert.equal(levelBetween({ energy: 1, duration: 5 }, { energy: 1, duration: 5 }), 0);
    assert.equal(levelBetween({ energy: 1, duration: 5 }, { energy: 1, duration: 6 }), 0);
    assert.equal(levelBetween({ energy: 1, duration: 5 }, { energy: 0.1, duration: 1 }), 0);
    assert.equal(levelBetween({ energy: 0, duration: 0 }, { energy: 9, duration: 1 }), 1);
  });
});
