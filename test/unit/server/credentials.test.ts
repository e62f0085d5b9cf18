import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generatePassword, parseBasicAuthorization, parseLogin, parseQueryCredentials, passwordMatches, sha256 } from '../../../src/server/auth/credentials.ts';
import { maskPhoneNumber } from '../../../src/server/ids.ts';

const ACCOUNT = '6a1e2b3c-0000-4000-8000-1234567890ab';

describe('device credentials', () => {
  it('issues 24-byte base64url secrets, stores SHA-256, compares them', () => {
    const password = generatePassword();
    assert.match(password, /^[A-Za-z0-9_-]{32}$/);
    assert.notEqual(generatePassword(), password);
    const hash = sha256(password);
    assert.equal(hash.length, 32);
    assert.equal(passwordMatches(hash, password), true);
    assert.equal(passwordMatches(hash, `${password}x`), false);
    assert.equal(passwordMatches(new Uint8Array(5), password), false, 'a stored hash of the wrong size never matches');
  });

  it('parses Basic headers and query credentials, and nothing malformed', () => {
    const header = `Basic ${Buffer.from(`${ACCOUNT}.1:secret:with:colons`).toString('base64')}`;
    assert.deepEqual(parseBasicAuthorization(header), { login: `${ACCOUNT}.1`, password: 'secret:with:colons' });
    for (const bad of [undefined, '', 'Basic', 'Bearer abc', 'Basic %%%', `Basic ${Buffer.from('nocolon').toString('base64')}`, `Basic ${Buffer.from(':pw').toString('base64')}`, `Basic ${'A'.repeat(600)}`]) {
      assert.equal(parseBasicAuthorization(bad), undefined, String(bad));
    }
    assert.deepEqual(parseQueryCredentials(new URLSearchParams({ login: `${ACCOUNT}.2`, password: 'pw' })), { login: `${ACCOUNT}.2`, password: 'pw' });
    assert.equal(parseQueryCredentials(new URLSearchParams({ login: 'x' })), undefined);
  });

  it('parses logins <account_id>.<device_id>', () => {
    assert.deepEqual(parseLogin(`${ACCOUNT.toUpperCase()}.12`), { accountId: ACCOUNT, deviceId: 12 });
    for (const bad of [ACCOUNT, `${ACCOUNT}.0`, `${ACCOUNT}.-1`, `${ACCOUNT}.1.2`, `x.1`, `${ACCOUNT}.99999999999`, `${ACCOUNT}.1e3`]) {
      assert.equal(parseLogin(bad), undefined, bad);
    }
  });

  it('masks phone numbers for logs', () => {
    assert.equal(maskPhoneNumber('+15550100001'), '+1555*****01');
    assert.equal(maskPhoneNumber('+441234567890'), '+4412******90');
    assert.equal(maskPhoneNumber('+1234'), '*****');
  });
});
