// The daemon's JSON-RPC 2.0 layer on its own: results, notifications, batches and the standard errors.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RpcError, RpcErrorCode, RpcServer, stringParam } from '../../../src/cli/daemon/jsonrpc.ts';

const rpc = new RpcServer(
  {
    echo: async (p) => ({ said: stringParam(p, 'text') }),
    fail: async () => {
      throw new Error('boom');
    },
  },
  (err) => new RpcError(RpcErrorCode.ApplicationError, err instanceof Error ? err.message : 'error', { code: 'CLIENT_TEST' }),
);

const call = async (line: string): Promise<unknown> => {
  const res = await rpc.handleLine(line);
  return res === undefined ? undefined : JSON.parse(res);
};

describe('JSON-RPC 2.0 server', () => {
  it('answers a request with its id', async () => {
    assert.deepEqual(await call('{"jsonrpc":"2.0","id":7,"method":"echo","params":{"text":"hi"}}'), { jsonrpc: '2.0', id: 7, result: { said: 'hi' } });
  });

  it('does not answer notifications', async () => {
    assert.equal(await call('{"jsonrpc":"2.0","method":"echo","params":{"text":"hi"}}'), undefined);
    assert.equal(await call('   '), undefined);
  });

  it('answers with the standard errors', async () => {
    const code = async (line: string): Promise<number> => ((await call(line)) as { error: { code: number } }).error.code;
    assert.equal(await code('{oops'), RpcErrorCode.ParseError);
    assert.equal(await code('"just a string"'), RpcErrorCode.InvalidRequest);
    assert.equal(await code('{"jsonrpc":"1.0","id":1,"method":"echo"}'), RpcErrorCode.InvalidRequest);
    assert.equal(await code('{"jsonrpc":"2.0","id":{},"method":"echo"}'), RpcErrorCode.InvalidRequest);
    assert.equal(await code('{"jsonrpc":"2.0","id":1,"method":"missing"}'), RpcErrorCode.MethodNotFound);
    assert.equal(await code('{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]}'), RpcErrorCode.InvalidParams);
    assert.equal(await code('{"jsonrpc":"2.0","id":1,"method":"echo","params":{}}'), RpcErrorCode.InvalidParams);
    assert.equal(await code('[]'), RpcErrorCode.InvalidRequest);
    const app = (await call('{"jsonrpc":"2.0","id":1,"method":"fail"}')) as { error: { code: number; data: { code: string } } };
    assert.equal(app.error.code, RpcErrorCode.ApplicationError);
    assert.equal(app.error.data.code, 'CLIENT_TEST');
  });

  it('answers a batch, leaving out notifications', async () => {
    const res = (await call('[{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"a"}},{"jsonrpc":"2.0","method":"echo","params":{"text":"b"}},{"jsonrpc":"2.0","id":2,"method":"missing"}]')) as Array<{ id: number }>;
    assert.deepEqual(res.map((r) => r.id), [1, 2]);
  });
});
