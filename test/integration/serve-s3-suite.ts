// `parley serve --blobs s3://...` end to end against a real S3 server (Ceph's radosgw in a network namespace
// of its own). Not a *.test.ts file: test/unit/server/blob-store-s3.test.ts runs it through
// scripts/ceph-s3.sh, which starts Ceph and sets PARLEY_S3_URL. Two terminal clients send each other a file
// through a server whose blob bytes live in the bucket: the bytes arrive verified, the bucket holds only
// ciphertext, and the server's data folder holds no blob bytes at all.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { S3Bucket } from '../../src/server/blobs/s3-bucket.ts';
import { parseS3Url } from '../../src/server/blobs/s3-store.ts';
import { cliOk, NUMBERS, startServer, tempDir, type CliServer } from '../support/cli.ts';
import { s3FromEnv, withBucket } from '../support/s3.ts';

const { alice: A, bob: B } = NUMBERS;
const { url: baseUrl } = s3FromEnv();
const bucketUrl = withBucket(baseUrl, `parley-serve-${randomBytes(4).toString('hex')}`);

describe('parley serve --blobs s3:// (Ceph radosgw)', () => {
  const tmp = tempDir('parley-serve-s3-');
  const profiles = { a: path.join(tmp.dir, 'alice'), b: path.join(tmp.dir, 'bob') };
  const location = parseS3Url(bucketUrl);
  const client = new S3Client(location.client);
  const bucket = new S3Bucket(client, location.bucket, location.prefix);
  let server: CliServer;

  before(async () => {
    server = await startServer(path.join(tmp.dir, 'server'), ['--blobs', bucketUrl]);
    await cliOk(['register', A.number, '--server', server.url, '--code', A.code, '--profile', profiles.a, '--json']);
    await cliOk(['register', B.number, '--server', server.url, '--code', B.code, '--profile', profiles.b, '--json']);
  });

  after(async () => {
    await server?.stop();
    client.destroy();
    tmp.remove();
  });

  it('sends a file through the bucket: verified on arrival, only ciphertext in S3, nothing in the data folder', async () => {
    // A document with a recognisable text in it, large enough to take several upload chunks.
    const marker = 'parley-s3-plaintext-marker';
    const doc = Buffer.concat([Buffer.from(`%PDF-1.7\n${marker}\n`), randomBytes(9 * 1024 * 1024)]);
    const file = path.join(tmp.dir, 'report.pdf');
    mkdirSync(tmp.dir, { recursive: true });
    writeFileSync(file, doc);

    await cliOk(['send-file', B.number, file, '--profile', profiles.a, '--json'], { timeoutMs: 120_000 });
    const r = await cliOk(['receive', '--until-empty', '--profile', profiles.b, '--json'], { timeoutMs: 120_000 });
    const line = r.lines.find((l) => l.type === 'text' && l.attachment !== undefined);
    assert.ok(line, `a message with an attachment arrived: ${r.stdout}`);
    const got = line.attachment as Record<string, unknown>;
    assert.equal(got.state, 'saved');
    assert.equal(got.size, doc.length);
    assert.equal(got.sha256, createHash('sha256').update(doc).digest('hex'));
    assert.deepEqual(readFileSync(got.path as string), doc);

    // The bucket holds the blob as one object of ciphertext (CBC padding plus a 10-byte MAC), and no object
    // in it (blob, leftover upload piece, anything) contains the plaintext.
    const objects = await bucket.list('');
    const blobs = objects.filter((o) => o.key.startsWith('blobs/'));
    assert.equal(blobs.length, 1, `one blob in the bucket: ${objects.map((o) => o.key).join(', ')}`);
    assert.equal(blobs[0]?.size, (Math.floor(doc.length / 16) + 1) * 16 + 10);
    for (const o of objects) {
      const res = await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: `${location.prefix}${o.key}` }));
      const stored = Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
      assert.equal(stored.indexOf(marker), -1, `no plaintext in ${o.key}`);
      assert.equal(stored.indexOf('%PDF'), -1, `no plaintext header in ${o.key}`);
    }

    // The server's own folder has its database, but no blob bytes.
    const blobsDir = path.join(server.dataDir, 'blobs');
    const localBlobFiles = existsSync(blobsDir)
      ? readdirSync(blobsDir, { recursive: true }).filter((name) => statSync(path.join(blobsDir, String(name))).isFile())
      : [];
    assert.deepEqual(localBlobFiles, [], 'no blob bytes in the data folder');
  });
});
