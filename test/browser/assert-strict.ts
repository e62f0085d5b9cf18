// `node:assert/strict` in the browser: the strict mode of the `assert` package (Node's assert, ported).
import assert from 'assert';

export default assert.strict;
