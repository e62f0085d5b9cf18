// The store contract on the in-memory store.
import { InMemoryClientStore } from '../../../src/client/store/memory.ts';
import { storeContract } from './store-contract.ts';

storeContract('InMemoryClientStore', async () => ({ store: new InMemoryClientStore() }));
