/** `parley register <phone> --server URL [--code CODE]`: registers this profile as a device of a phone number. */
import { register, requestVerificationCode } from '../../client/registration.js';
import { asE164 } from '../../client/ids.js';
import { ask, type Io, type Printer } from '../io.js';
import { crypto, openStore } from '../profile.js';

export async function registerCommand(
  args: { phone: string; server: string; code: string | undefined; profile: string },
  io: Io,
  out: Printer,
): Promise<number> {
  const number = asE164(args.phone);
  const serverUrl = new URL(args.server).origin;
  let code = args.code;
  if (code === undefined) {
    const expires = await requestVerificationCode({ serverUrl, number });
    code = await ask(io, `A verification code was sent to ${number} (valid ${Math.round(expires / 60)} min). Code: `, 'no verification code given on stdin');
  }
  const store = openStore(args.profile);
  try {
    const result = await register({ serverUrl, number, code, crypto, store });
    out.result(
      { accountId: result.accountId, deviceId: result.deviceId, number: result.number, reregistered: result.reregistered, profile: args.profile },
      `Registered ${result.number} (account ${result.accountId}, device ${result.deviceId})${result.reregistered ? ': this replaced the previous registration of the number' : ''}.`,
    );
    return 0;
  } finally {
    await store.close();
  }
}
