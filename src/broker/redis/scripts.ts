/**
 * Lua scripts run atomically by Redis. Publishing assigns the seq and
 * publishes in one step, so the order of seqs is the order every subscriber
 * sees, whichever logic process accepted the push.
 */
import { createHash } from 'node:crypto';

export interface LuaScript {
  source: string;
  sha: string;
}

function script(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * KEYS[1] stream hash; ARGV: channel, message id, tag, val, epoch to use if the
 * stream is new, stream TTL in seconds. Returns { seq, epoch }.
 */
export const PUBLISH = script(`
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[5]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('PUBLISH', ARGV[1], seq .. '|' .. epoch .. '|' .. ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4])
return { seq, epoch }
`);

/** KEYS[1] conn key; ARGV[1] node id. Deletes the key only while it still names that node. */
export const RELEASE_CONN = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`);
