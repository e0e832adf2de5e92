/** The KV service: its state machine and its routes, for @raft/server to run. */
import { defineService } from '@raft/server';
import { registerKvRoutes } from './http/kv-routes.js';
import { kvCommandCodec } from './kv-command.js';
import { KvStore } from './kv-store.js';

/** `raft-kv`: a replicated key-value store. */
export const kvService = defineService({
  name: 'raft-kv',
  description: 'A replicated key-value store on Raft.',
  createStateMachine() {
    const store = new KvStore();
    return { stateMachine: store, codec: kvCommandCodec, state: store };
  },
  registerRoutes: registerKvRoutes,
});
