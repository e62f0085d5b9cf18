import { create } from '@bufbuild/protobuf';
import { RegisterRequestSchema, RegisterResponseSchema, VerificationCodeRequestSchema, VerificationCodeResponseSchema } from '../../protocol/gen/service_pb.js';
import { decode, reply, type Route } from '../http/route.js';
import type { RegistrationService } from '../services/registration.js';

/** `POST /v1/verification/request` and `POST /v1/accounts/register` (unauthenticated). */
export function registrationRoutes(registration: RegistrationService): Route[] {
  return [
    {
      verb: 'POST',
      path: '/v1/verification/request',
      auth: false,
      async handle(ctx, body) {
        const request = decode(VerificationCodeRequestSchema, body);
        const expiresInSeconds = await registration.requestCode(request.number, ctx.remoteAddress);
        return reply(VerificationCodeResponseSchema, create(VerificationCodeResponseSchema, { expiresInSeconds }));
      },
    },
    {
      verb: 'POST',
      path: '/v1/accounts/register',
      auth: false,
      async handle(ctx, body) {
        return reply(RegisterResponseSchema, await registration.register(decode(RegisterRequestSchema, body), ctx.remoteAddress));
      },
    },
  ];
}
