/**
 * Whether a gateway node that a request reached no one on is reconnecting to
 * Redis rather than dead. A PUBLISH to a node's channel that reaches no
 * subscriber reads the same for a killed node and for a live one whose
 * subscriber connection is not back yet (Redis restarted, or dropped that one
 * connection); taken for dead, the live node's session would be changed as an
 * away one and its client closed once the node is back.
 *
 * So each gateway node keeps `roomcast:node-state:<nodeId>` (expiring with the
 * registry, rewritten every beat and whenever its subscriber drops or is back):
 * the run_id of the Redis server it wrote to and whether its subscriber is
 * subscribed. The node is reconnecting when the key says its subscriber is
 * not, or was written to another Redis run (a restart that kept its data, which
 * the node has not reconnected to yet); dead when the key is gone or says
 * subscribed on this run (a killed node's connections close with it). Either
 * way bounded: the key expires with the node's registry entries.
 */
import type { Client } from './calls.js';
import { infoField } from './info.js';
import type { RedisNames } from './keys.js';

/** The run_id of the Redis server `client` is connected to; undefined when INFO cannot be read (an ACL). */
export async function redisRunId(client: Client): Promise<string | undefined> {
  try {
    return infoField(await client.info('server'), 'run_id');
  } catch {
    return undefined;
  }
}

export class NodeState {
  /** The run_id of the Redis server as read after the last (re)connect. */
  private runId: string | undefined;

  constructor(
    private readonly client: Client,
    private readonly names: RedisNames,
    private readonly registryTtlMs: number,
  ) {}

  /** Reads the run_id of the Redis server just (re)connected to, before the state is written to it. */
  async connected(): Promise<void> {
    this.runId = await redisRunId(this.client);
  }

  /** Writes the node's state; a write that fails is made again at the next beat. */
  async write(nodeId: string, subscribed: boolean): Promise<void> {
    await this.client.set(this.names.nodeStateKey(nodeId), `${this.runId ?? ''} ${subscribed ? 1 : 0}`, { PX: this.registryTtlMs });
  }

  async remove(nodeId: string): Promise<void> {
    await this.client.del(this.names.nodeStateKey(nodeId));
  }

  /** Asked by the process a PUBLISH to `nodeId` reached no one on: whether the node is alive and resubscribing. */
  async reconnecting(nodeId: string): Promise<boolean> {
    const state = await this.client.get(this.names.nodeStateKey(nodeId));
    if (state === null) return false;
    const [runId, subscribed] = state.split(' ');
    if (subscribed === '0') return true;
    if (runId === '') return false;
    const current = await redisRunId(this.client);
    return current !== undefined && current !== runId;
  }
}
