/**
 * Lua scripts run atomically by Redis. Publishing assigns the seq, appends to
 * the stream's history and publishes in one step, so the order of seqs is the
 * order every subscriber sees and history never disagrees with what was sent,
 * whichever logic process accepted the push.
 */
import { createHash } from 'node:crypto';

export interface LuaScript {
  source: string;
  sha: string;
}

function script(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/** The stream's epoch, created (and stale history dropped) when the stream is new. KEYS: hash, history. ARGV[1]: epoch to use if new. */
const ENSURE_EPOCH = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  redis.call('DEL', KEYS[2])
end
`;

/**
 * KEYS: stream hash, stream history, the order counter (ranks publications of
 * every stream). ARGV: channel, message id, tag, val, epoch to use if the
 * stream is new, hash TTL s, history size (0 = off), history TTL s.
 * Returns { seq, epoch }.
 */
export const PUBLISH = script(`${ENSURE_EPOCH}
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('EXPIRE', KEYS[1], ARGV[6])
if tonumber(ARGV[7]) > 0 then
  local t = redis.call('TIME')
  local now = t[1] * 1000 + math.floor(t[2] / 1000)
  local order = redis.call('INCR', KEYS[3])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], seq .. '-0', 'i', ARGV[2], 't', ARGV[3], 'v', ARGV[4], 'a', now, 'o', order)
  redis.call('EXPIRE', KEYS[2], ARGV[8])
end
redis.call('PUBLISH', ARGV[1], seq .. '|' .. epoch .. '|' .. ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4])
return { seq, epoch }
`);

/**
 * KEYS: stream hash, stream history. ARGV: epoch to use if new, TTL s the hash
 * keeps at least (a longer one, from a push, stays). Returns { seq, epoch }.
 */
export const POSITION = script(`${ENSURE_EPOCH}
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
local seq = redis.call('HGET', KEYS[1], 'seq')
if not seq then seq = 0 end
return { tonumber(seq), epoch }
`);

/**
 * KEYS: stream hash, stream history. ARGV: after seq, limit, history TTL ms.
 * Returns { seq, epoch, entries } with entries { seq, id, tag, val, order } newer than
 * the TTL, or an empty reply for a stream Redis does not know.
 */
export const HISTORY = script(`
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return {} end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or 0)
local t = redis.call('TIME')
local oldest = t[1] * 1000 + math.floor(t[2] / 1000) - tonumber(ARGV[3])
local out = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-0', '+', 'COUNT', ARGV[2])) do
  local f = {}
  for i = 1, #entry[2], 2 do f[entry[2][i]] = entry[2][i + 1] end
  if tonumber(f['a']) >= oldest then
    table.insert(out, { tonumber(string.match(entry[1], '^(%d+)')), f['i'], tonumber(f['t']), f['v'], tonumber(f['o']) })
  end
end
return { seq, epoch, out }
`);

/** KEYS[1] conn key; ARGV[1] node id. Deletes the key only while it still names that node. */
export const RELEASE_CONN = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`);

/**
 * KEYS[1] session hash. ARGV: room, its position. Adds the room to a session
 * that still exists (keeping its expiry); an expired or taken one is not
 * brought back. Returns 1 when added.
 */
export const ADD_AWAY_ROOM = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
`);

/**
 * KEYS: session hash, conn key. ARGV: the node the conn key may still name (a
 * dead one), the uid resuming ('' when anonymous). Returns the session's
 * fields and deletes it; an empty reply when there is none; the single
 * field 'foreign' when it belongs to another user.
 */
export const TAKE_SESSION = script(`
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return {} end
if (redis.call('HGET', KEYS[1], '_') or '') ~= ARGV[2] then return { 'foreign' } end
redis.call('DEL', KEYS[1])
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return fields
`);
