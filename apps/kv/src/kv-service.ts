/** The KV service: its state machine and its routes, for @raft/server to run. */
import { defineService } from '@raft/server';
import { registerKvRoutes } from './http/kv-routes.js';
import { createKvStateMachine } from './kv-state-machine.js';

/** `raft-kv`: a replicated key-value store. */
export const kvService = defineService({
  name: 'raft-kv',
  description: 'A replicated key-value store on Raft.',
  createStateMachine() {
    const kv = createKvStateMachine();
    return { stateMachine: kv.stateMachine, codec: kv.codec, state: kv.store };
  },
  registerRoutes: registerKvRoutes,
});
