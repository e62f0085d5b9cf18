// The S3 blob store. Its URL parsing runs anywhere; everything else runs against a real S3 server, Ceph's
// radosgw, which scripts/ceph-s3.sh starts in a network namespace of its own (loopback only) around the
// inner suites, blob-store-s3-suite.ts (the BlobStore contract and the S3-only cases) and
// test/integration/serve-s3-suite.ts (`parley serve --blobs s3://` with two terminal clients). Without the Ceph
// packages that part is skipped, saying so, except in CI (CI=true), where it fails.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { stripVTControlCharacters } from 'node:util';
import { parseS3Url } from '../../../src/server/blobs/s3-store.ts';
import { cephUnavailableReason, runWithCeph } from '../../support/s3.ts';

describe('parseS3Url', () => {
  it('reads the bucket, key prefix, endpoint, region, path style and keys', () => {
    const parsed = parseS3Url('s3://media.example/parley/prod/?endpoint=http://127.0.0.1:7480&region=eu-west-1&forcePathStyle=true&accessKeyId=AK&secretAccessKey=SK');
    assert.equal(parsed.bucket, 'media.example');
    assert.equal(parsed.prefix, 'parley/prod/');
    assert.equal(parsed.client.endpoint, 'http://127.0.0.1:7480');
    assert.equal(parsed.client.region, 'eu-west-1');
    assert.equal(parsed.client.forcePathStyle, true);
    assert.deepEqual(parsed.client.credentials, { accessKeyId: 'AK', secretAccessKey: 'SK' });
    const plain = parseS3Url('s3://bucket-1');
    assert.equal(plain.prefix, '');
    assert.equal(plain.client.endpoint, undefined);
    assert.equal(plain.client.forcePathStyle, false);
    assert.equal(plain.client.credentials, undefined, 'the SDK default chain (AWS_* environment variables)');
  });

  it('refuses what it cannot use, without echoing the keys', () => {
    for (const [url, what] of [
      ['http://bucket', /s3:\/\//],
      ['s3://', /bucket/],
      ['s3://Bad_Bucket', /bucket/],
      ['s3://b1b?endpoint=ftp://x', /endpoint/],
      ['s3://b1b?forcePathStyle=yes', /forcePathStyle/],
      ['s3://b1b?accessKeyId=SECRETID', /both/],
      ['s3://b1b?secretKey=SECRETVALUE', /unknown parameter secretKey/],
    ] as const) {
      assert.throws(() => parseS3Url(url), (err: Error) => what.test(err.message) && !/SECRET/.test(err.message), url);
    }
  });
});

describe('S3 blob store on Ceph radosgw (network namespace)', () => {
  const reason = cephUnavailableReason();
  it('passes the BlobStore contract and the S3-only cases', { timeout: 900_000 }, async (t) => {
    if (reason !== undefined) {
      if (process.env.CI === 'true') assert.fail(`Ceph is needed in CI: ${reason}`);
      t.skip(`no S3 server here: ${reason}`);
      return;
    }
    const run = await runWithCeph(['test/unit/server/blob-store-s3-suite.ts', 'test/integration/serve-s3-suite.ts'], 800_000);
    const plain = stripVTControlCharacters(run.output);
    for (const line of plain.split('\n')) if (/ceph-s3:|MiB\/s|^ℹ (tests|pass|fail|duration)/.test(line)) t.diagnostic(line.replace(/^\s*ℹ\s*/, '').trim());
    assert.notEqual(run.status, 3, `Ceph did not start:\n${plain.slice(-4000)}`);
    assert.equal(run.status, 0, `the S3 suite failed:\n${plain.slice(-20_000)}`);
    assert.match(plain, /ℹ fail 0/);
    assert.doesNotMatch(plain, /ℹ pass 0\b/, 'the suite ran cases');
  });
});
