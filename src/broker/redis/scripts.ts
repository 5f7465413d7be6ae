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

/**
 * Fields of a session hash that are not rooms: `#` is in no room id, so no
 * room can take their place (`_`, the uid field before, is a valid room id).
 */
export const SESSION_MARKER = '#uid';
/** The session's rooms limit, from the node that holds (or held) it. */
export const ROOMS_LIMIT_FIELD = '#rooms-limit';
/** The node an away session left: only that node may end it early (src/gateway/away-ledger.ts). */
export const AWAY_FROM_FIELD = '#away-from';

const scripts: LuaScript[] = [];

function script(source: string): LuaScript {
  const made = { source, sha: createHash('sha1').update(source).digest('hex') };
  scripts.push(made);
  return made;
}

/** Every script here, for loading them all into Redis's script cache at once. */
export function allScripts(): readonly LuaScript[] {
  return scripts;
}

/** Does nothing: run at the start, it shows whether this Redis user may run scripts at all. */
export const SCRIPTS_ALLOWED = script('return 1');

/** The stream's epoch, created (and stale history dropped) when the stream is new. KEYS: hash, history. ARGV[epochArg]: epoch to use if new. */
function ensureEpoch(epochArg: number): string {
  return `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[${epochArg}]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  redis.call('DEL', KEYS[2])
end
`;
}

/** Sets `now`: Redis's clock, in ms since the epoch. */
const REDIS_NOW = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)`;

/** Defines roomFields(session): the fields of a session hash that are rooms (not starting with `#`). */
const ROOM_FIELDS = `
local function roomFields(session)
  local rooms = {}
  for _, field in ipairs(redis.call('HKEYS', session)) do
    if string.sub(field, 1, 1) ~= '#' then table.insert(rooms, field) end
  end
  return rooms
end
`;

/** The error a script answers when it runs past its deadline, having done nothing. */
export const LATE = 'LATE';

/**
 * Sets `now` (ms, Redis's clock) and does nothing past ARGV[deadlineArg] (ms,
 * Redis's clock): a request Redis takes only after the caller stopped waiting
 * (Redis was stopped meanwhile) must not take effect after a 503.
 */
function deadlineCheck(deadlineArg: number): string {
  return `${REDIS_NOW}
if now > tonumber(ARGV[${deadlineArg}]) then return redis.error_reply('${LATE} the deadline passed before Redis ran the request') end
`;
}

/** Assigns the next seq, keeps the publication in history and PUBLISHes it; sets `seq` and `epoch`. KEYS and ARGV 1-8 as PUBLISH's. */
const PUBLISH_STEPS = `${ensureEpoch(5)}
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('EXPIRE', KEYS[1], ARGV[6])
if tonumber(ARGV[7]) > 0 then
  local order = redis.call('INCR', KEYS[3])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], seq .. '-0', 'i', ARGV[2], 't', ARGV[3], 'v', ARGV[4], 'a', now, 'o', order)
  redis.call('EXPIRE', KEYS[2], ARGV[8])
end
redis.call('PUBLISH', ARGV[1], seq .. '|' .. epoch .. '|' .. ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4])
`;

/**
 * KEYS: stream hash, stream history, the order counter (ranks publications of
 * every stream). ARGV: channel, message id, tag, val, epoch to use if the
 * stream is new, hash TTL s, history size (0 = off), history TTL s, deadline.
 * Returns { seq, epoch }.
 */
export const PUBLISH = script(`${deadlineCheck(9)}${PUBLISH_STEPS}
return { seq, epoch }
`);

/**
 * PUBLISH under an idempotency key, checked and kept in the same step, so that
 * whichever logic process runs it, a key publishes once. KEYS: PUBLISH's, then
 * the key's. ARGV: PUBLISH's up to the history TTL, then the key's window
 * (ms), deadline. Returns { seq, epoch } after publishing, and keeps
 * 'seq|epoch|id' under the key for the window; returns { 'repeated',
 * 'seq|epoch|id' } (publishing nothing) when the key is already kept.
 */
export const PUBLISH_ONCE = script(`${deadlineCheck(10)}
local first = redis.call('GET', KEYS[4])
if first then return { 'repeated', first } end
${PUBLISH_STEPS}
redis.call('SET', KEYS[4], seq .. '|' .. epoch .. '|' .. ARGV[2], 'PX', ARGV[9])
return { seq, epoch }
`);

/**
 * The value of a push's idempotency key while its push is under way: `under-way:<ms>:<claim id>`, until when
 * (Redis's clock) it may be, and the claim's id, which only its own settle gives; past that time, still
 * unsettled, it counts as outcome unknown. A push ended with its outcome unknown is `unknown`; one made, its
 * answer (JSON, starting with '{'). '' (a claim of an older roomcast, which did not say how long it may
 * take) counts as outcome unknown.
 */
const PUSH_KEY_STATES = `
local function underWayUntil(value)
  local untilMs = string.match(value, '^under%-way:(%d+)')
  return untilMs and tonumber(untilMs)
end
local function unsettled(value)
  return value == '' or value == 'unknown' or underWayUntil(value) ~= nil
end
`;

/**
 * Claims an idempotency key for a push to a connection or a user. KEYS: the
 * key's. ARGV: its window (ms), the longest the push may take (ms), the claim's
 * id, deadline. Returns { 'claimed' } after keeping it (under way) for the
 * window, or what it holds: { 'under-way', ms it may still take }, { 'unknown' },
 * { 'done', answer }.
 */
export const CLAIM_PUSH = script(`${deadlineCheck(4)}${PUSH_KEY_STATES}
if redis.call('SET', KEYS[1], 'under-way:' .. (now + tonumber(ARGV[2])) .. ':' .. ARGV[3], 'NX', 'PX', ARGV[1]) then return { 'claimed' } end
local kept = redis.call('GET', KEYS[1])
-- false: it expired between the SET and the GET, a moment ago; as good as under way
if not kept then return { 'under-way', 0 } end
local untilMs = underWayUntil(kept)
if untilMs and untilMs > now then return { 'under-way', untilMs - now } end
if unsettled(kept) then return { 'unknown' } end
return { 'done', kept }
`);

/**
 * Settles a claimed key. KEYS: the key's. ARGV: the claim's id, then 'made' and
 * the push's answer, 'not-made' (the key is freed), or 'unknown'. As
 * Broker.settlePush says: only that claim, still under way, is changed; a key
 * settled, claimed anew by another request, or expired meanwhile is left alone.
 */
export const SETTLE_PUSH = script(`
local kept = redis.call('GET', KEYS[1])
if not kept or string.match(kept, '^under%-way:%d+:(.+)$') ~= ARGV[1] then return 0 end
if ARGV[2] == 'not-made' then return redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[2] == 'made' and ARGV[3] or 'unknown', 'KEEPTTL')
return 1
`);

/** ARGV: channel, message, deadline. PUBLISHes unless past the deadline; returns how many subscribers got it. */
export const PUBLISH_BY = script(`${deadlineCheck(3)}
return redis.call('PUBLISH', ARGV[1], ARGV[2])
`);

/**
 * KEYS: stream hash, stream history. ARGV: epoch to use if new, TTL s the hash
 * keeps at least (a longer one, from a push, stays). Returns { seq, epoch }.
 */
export const POSITION = script(`${ensureEpoch(1)}
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
local seq = redis.call('HGET', KEYS[1], 'seq')
if not seq then seq = 0 end
return { tonumber(seq), epoch }
`);

/**
 * KEYS: stream hash, stream history. ARGV: after seq, limit, history TTL ms.
 * Returns { seq, epoch, entries } with entries { seq, id, tag, val, order } newer than
 * the TTL, or an empty reply for a stream Redis does not know. The history is
 * trimmed by size only (its key expires only once pushes stop), so it may hold
 * expired entries before the kept ones: they come first (appended in time
 * order), and the first kept one after the seq asked for is found by bisection,
 * so they take none of the page's places and cost O(log n) reads however many.
 */
export const HISTORY = script(`
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return {} end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or 0)${REDIS_NOW}
local oldest = now - tonumber(ARGV[3])
local limit = tonumber(ARGV[2])
local function fieldsOf(entry)
  local f = {}
  for i = 1, #entry[2], 2 do f[entry[2][i]] = entry[2][i + 1] end
  return f
end
local function kept(entry) return tonumber(fieldsOf(entry)['a']) >= oldest end
local function seqOf(entry) return tonumber(string.match(entry[1], '^(%d+)')) end
-- the first entry from this range start on, or nil
local function firstFrom(start) return redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', 1)[1] end
local out = {}
-- XRANGE answers COUNT 0 with nil (false in Lua), not with no entries
if limit == 0 then return { seq, epoch, out } end
local from = '(' .. ARGV[1] .. '-0'
local first = firstFrom(from)
if first and not kept(first) then
  local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
  if not kept(last) then return { seq, epoch, out } end
  -- the entry at lo is expired, the one at hi kept: narrowed to the first kept one
  local lo, hi = seqOf(first), seqOf(last)
  while hi - lo > 1 do
    local mid = math.floor((lo + hi) / 2)
    if kept(firstFrom(string.format('%d-0', mid))) then hi = mid else lo = mid end
  end
  from = string.format('%d-0', hi)
end
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', limit)) do
  local f = fieldsOf(entry)
  if tonumber(f['a']) >= oldest then
    table.insert(out, { seqOf(entry), f['i'], tonumber(f['t']), f['v'], tonumber(f['o']) })
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
 * KEYS: conn key, session hash. ARGV: node id, recovery window ms ('0': the
 * session ends), uid ('' when anonymous), the node's rooms limit, then each
 * room and the position it was joined at ('seq:epoch', '' when not known).
 * Releases the wsId and keeps its session away (or ends it), unless another
 * node holds the wsId now: then the session is that node's, and 0 is returned.
 */
export const CLOSE_CONN = script(`
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
if holder then redis.call('DEL', KEYS[1]) end
if ARGV[2] == '0' then
  redis.call('DEL', KEYS[2])
  return 1
end
redis.call('HSET', KEYS[2], '${SESSION_MARKER}', ARGV[3], '${ROOMS_LIMIT_FIELD}', ARGV[4], '${AWAY_FROM_FIELD}', ARGV[1])
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] ~= '' then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) else redis.call('HSETNX', KEYS[2], ARGV[i], '') end
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`);

/**
 * KEYS: conn key, session hash. ARGV: node id. Ends the session if it is away
 * (no node holds the wsId) and it left that node; returns 1 when it ended one.
 */
export const DROP_AWAY = script(`
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('HGET', KEYS[2], '${AWAY_FROM_FIELD}') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[2])
`);

/**
 * KEYS: the conn key, session hash and kicked key of each connection, in
 * threes. ARGV: node id, registry TTL ms, session TTL ms ('0': no sessions
 * kept), the node's rooms limit, '1' for a full refresh (after a reconnect),
 * then for each connection its uid ('' when anonymous), its rooms
 * (space-separated) and '1' when Redis may have missed a change the node made
 * to it. Re-registers each connection whose wsId names this node; a full
 * refresh rewrites its session from the node's.
 *
 * A wsId that names no node was let go while the node held it (a logic
 * process found the node unreachable, or the entry expired) and its session
 * kept away, where the logic may have changed it: kicked, the connection is
 * `ended`; with other rooms than the node's, it is `changed` (it resumes, to
 * take them); either way it is not re-registered. With the same rooms, with no
 * session left (Redis lost its data, or the session ran out) or when the node
 * changed the session meanwhile, it is re-registered with the node's rooms.
 * Returns the (1-based) positions of the connections { moved (another node
 * holds them now), ended, changed }.
 */
export const REFRESH_CONNS = script(`${ROOM_FIELDS}
local function sameRooms(session, rooms)
  local wanted, count = {}, 0
  for room in string.gmatch(rooms, '%S+') do
    wanted[room] = true
    count = count + 1
  end
  local have = roomFields(session)
  if #have ~= count then return false end
  for _, field in ipairs(have) do
    if not wanted[field] then return false end
  end
  return true
end

local sessions = ARGV[3] ~= '0'
local full = ARGV[5] == '1'
local moved, ended, changed = {}, {}, {}
for i = 1, #KEYS / 3 do
  local conn, session, kicked = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local uid, rooms, unsynced = ARGV[3 + 3 * i], ARGV[4 + 3 * i], ARGV[5 + 3 * i] == '1'
  local holder = redis.call('GET', conn)
  local let_go = not holder and sessions and not unsynced
  local kept = let_go and redis.call('EXISTS', session) == 1
  if holder and holder ~= ARGV[1] then
    table.insert(moved, i)
  elseif let_go and not kept and redis.call('EXISTS', kicked) == 1 then
    table.insert(ended, i)
  elseif kept and not sameRooms(session, rooms) then
    table.insert(changed, i)
  else
    redis.call('SET', conn, ARGV[1], 'PX', ARGV[2])
    if sessions then
      if full or not holder then
        -- the node holds the connection: its rooms are the whole truth (a leave Redis missed must not come back)
        redis.call('DEL', session)
        redis.call('HSET', session, '${SESSION_MARKER}', uid, '${ROOMS_LIMIT_FIELD}', ARGV[4])
        for room in string.gmatch(rooms, '%S+') do redis.call('HSET', session, room, '') end
      end
      redis.call('PEXPIRE', session, ARGV[3])
    end
  end
end
return { moved, ended, changed }
`);

/**
 * KEYS: session hash, conn key. ARGV: the uid resuming ('' when anonymous),
 * the node claiming, registry TTL ms, deadline. Claims the wsId for the node unless the
 * registry names any node for it (the single field 'busy'); then returns the
 * session's fields and deletes the session: an empty reply when there is none,
 * the single field 'foreign' (and no claim) when it belongs to another user.
 */
export const TAKE_SESSION = script(`${deadlineCheck(4)}
if redis.call('EXISTS', KEYS[2]) == 1 then return { 'busy' } end
local fields = redis.call('HGETALL', KEYS[1])
if #fields > 0 and (redis.call('HGET', KEYS[1], '${SESSION_MARKER}') or '') ~= ARGV[1] then return { 'foreign' } end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
if #fields > 0 then redis.call('DEL', KEYS[1]) end
return fields
`);

/**
 * KEYS: session hash, conn key, kicked key. ARGV: how long the kicked key
 * lives (ms). Ends an away session: 1 when it did; 0 when there is none, or a
 * node holds the wsId now (a resume took the session meanwhile: the session is
 * that node's to end). The kicked key tells a node that held the connection,
 * cut off from Redis meanwhile, to close it once it is back (REFRESH_CONNS).
 */
export const END_AWAY = script(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[1])
return 1
`);

/** What ADD_AWAY_ROOM and REMOVE_AWAY_ROOM answer when a node holds the wsId now: a resume took the session, it is that node's to change. */
export const SESSION_HELD = 'held';

/**
 * A join while away. KEYS: session hash, the counter of refusals, conn key.
 * ARGV: room, its position 'seq:epoch'. Returns 1 when added; 0 when the
 * session is gone or already in the room; -n (and counts the refusal) when it
 * is in n rooms, its limit; SESSION_HELD when a node holds the wsId.
 */
export const ADD_AWAY_ROOM = script(`${ROOM_FIELDS}
if redis.call('EXISTS', KEYS[3]) == 1 then return '${SESSION_HELD}' end
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local limit = tonumber(redis.call('HGET', KEYS[1], '${ROOMS_LIMIT_FIELD}') or '0')
if limit > 0 then
  local rooms = #roomFields(KEYS[1])
  if rooms >= limit then
    redis.call('INCR', KEYS[2])
    return -rooms
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`);

/**
 * A leave while away. KEYS: session hash, conn key. ARGV: room. Returns 1 when
 * removed, 0 when the session was not in it; SESSION_HELD when a node holds the wsId.
 */
export const REMOVE_AWAY_ROOM = script(`
if redis.call('EXISTS', KEYS[2]) == 1 then return '${SESSION_HELD}' end
return redis.call('HDEL', KEYS[1], ARGV[1])
`);

/**
 * KEYS: the hash of the processes' settings (a field per process id, value
 * `<until ms, Redis's clock>|<record>`). ARGV: this process's id, its record
 * ('' only reads), how long a record lives unless rewritten (ms). Drops the
 * records past their time and returns the others' { id, record, ... }.
 */
export const PROCESS_SETTINGS = script(`${REDIS_NOW}
local ttl = tonumber(ARGV[3])
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], (now + ttl) .. '|' .. ARGV[2])
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
end
local live = {}
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local bar = string.find(fields[i + 1], '|', 1, true)
  local expires = bar and tonumber(string.sub(fields[i + 1], 1, bar - 1))
  if not expires or expires < now then
    redis.call('HDEL', KEYS[1], fields[i])
  elseif fields[i] ~= ARGV[1] then
    table.insert(live, fields[i])
    table.insert(live, string.sub(fields[i + 1], bar + 1))
  end
end
return live
`);
