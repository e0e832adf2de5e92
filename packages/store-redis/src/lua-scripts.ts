/**
 * The Lua scripts that make every write atomic. Redis runs a script as one step: no other
 * command runs in between, and with an append-only file its effects are logged as one
 * MULTI/EXEC block, so after a crash either all of a script's writes are there or none.
 *
 * Rules every write script follows:
 * - It starts by comparing the lock key (KEYS[1]) with the holder value (ARGV[1]) and refuses
 *   with `RAFT_LOCK <current holder>` when they differ, so a store that lost its lock cannot
 *   write any more, whatever it still believes.
 * - It checks everything before its first write and refuses with a `RAFT_<CODE> <message>`
 *   error reply: Redis does not roll back the writes a script made before an error, so a
 *   refusal must come first to store nothing.
 * - Its work is bounded by its arguments (the entries it writes) plus a `budget` of deletions;
 *   whatever is left to delete is recorded (`floor` and `ceiling` in `P meta`) and finished by
 *   further calls of `sweepLog`, so no single call blocks Redis for long.
 *
 * Numbers cross as decimal strings and are formatted with `%d` (Lua's `tostring` would print
 * indexes past 10^14 in exponent form); Lua numbers are doubles, exact up to 2^53, as in JS.
 */
import { createHash } from 'node:crypto';

/** A script with its SHA1, for EVALSHA. */
export interface LuaScript {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
}

function script(name: string, ...parts: string[]): LuaScript {
  const lua = parts.join('\n');
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const COMMON = `
local function fmt(n) return string.format('%d', n) end
local function lockError()
  local holder = redis.call('GET', KEYS[1])
  if holder ~= ARGV[1] then return redis.error_reply('RAFT_LOCK ' .. (holder or '')) end
  return nil
end
`;

/** Bounds and garbage range of the log: KEYS[2] is `P meta`, KEYS[3] is `P log`. */
const LOG = `
local function readMeta()
  local m = redis.call('HMGET', KEYS[2], 'first', 'last', 'floor', 'ceiling')
  local first = tonumber(m[1]) or 1
  local last = tonumber(m[2]) or (first - 1)
  local floor = tonumber(m[3]) or first
  local ceiling = tonumber(m[4]) or last
  return first, last, floor, ceiling
end
local function deleteFields(a, b)
  local fields = {}
  for i = a, b do fields[#fields + 1] = fmt(i) end
  local deleted = 0
  for i = 1, #fields, 1000 do
    deleted = deleted + redis.call('HDEL', KEYS[3], unpack(fields, i, math.min(i + 999, #fields)))
  end
  return deleted
end
-- Deletes at most budget fields outside [first, last] (they all lie in [floor, ceiling]), the
-- highest first, then the lowest; returns the new floor and ceiling, and 1 if garbage remains.
-- Every entry in [first, last] is stored, so HLEN tells how many fields are garbage, and the
-- sweep stops when none is left instead of walking indexes that never held an entry: a
-- compaction past the end leaves such a range below first, which the next append joins to
-- [floor, ceiling] (a sweep step that failed before it could walk it for every index up to
-- first). Above last the garbage is contiguous, so it goes first.
local function sweep(first, last, floor, ceiling, budget)
  local garbage = redis.call('HLEN', KEYS[3]) - (last - first + 1)
  if garbage > 0 and ceiling >= floor and ceiling > last then
    local from = math.max(last + 1, floor, ceiling - budget + 1)
    garbage = garbage - deleteFields(from, ceiling)
    budget = budget - (ceiling - from + 1)
    ceiling = from - 1
  end
  if garbage > 0 and ceiling >= floor and floor < first and budget > 0 then
    local to = math.min(first - 1, ceiling, floor + budget - 1)
    garbage = garbage - deleteFields(floor, to)
    floor = to + 1
  end
  if garbage <= 0 or ceiling < floor or (floor >= first and ceiling <= last) then
    -- Nothing left outside [first, last] (or nothing this range could still find).
    return first, last, 0
  end
  return floor, ceiling, 1
end
local function finish(first, last, floor, ceiling, budget)
  local more
  floor, ceiling, more = sweep(first, last, floor, ceiling, budget)
  redis.call('HSET', KEYS[2], 'first', fmt(first), 'last', fmt(last), 'floor', fmt(floor),
    'ceiling', fmt(ceiling))
  return { first, last, more }
end
`;

/**
 * Checks the layout version and discards a half-staged append of a previous holder.
 * KEYS: lock, meta, log stage. ARGV: holder, version.
 */
export const INIT = script(
  'init',
  COMMON,
  `
local err = lockError()
if err then return err end
local version = redis.call('HGET', KEYS[2], 'version')
if version and version ~= ARGV[2] then
  return redis.error_reply('RAFT_VERSION the prefix holds storage of layout version ' .. version ..
    ', this package writes version ' .. ARGV[2])
end
if not version then redis.call('HSET', KEYS[2], 'version', ARGV[2]) end
redis.call('DEL', KEYS[3])
return 1
`,
);

/**
 * Appends entries, replacing the stored suffix from the first one (LogStore.append).
 * KEYS: lock, meta, log, log stage. ARGV: holder, head index, count, budget, mode ('inline'
 * with the batch as ARGV[6], or 'staged' with the batch in the stage list), batch.
 * A batch is a sequence of records, each a 4-byte big-endian length and the encoded entry.
 * Returns { first, last, more }.
 */
export const APPEND = script(
  'append',
  COMMON,
  LOG,
  `
local err = lockError()
if err then return err end
local head = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local first, last, floor, ceiling = readMeta()
if head > last + 1 then
  return redis.error_reply('RAFT_GAP append at ' .. fmt(head) ..
    ' would leave a gap after the last index ' .. fmt(last) .. '; nothing was stored')
end
if head < first then
  return redis.error_reply('RAFT_COMPACTED append at ' .. fmt(head) ..
    ' is before the first index ' .. fmt(first) .. '; nothing was stored')
end
local batches
if ARGV[5] == 'staged' then batches = redis.call('LRANGE', KEYS[4], 0, -1) else batches = { ARGV[6] } end
local fields = {}
local n = 0
for _, batch in ipairs(batches) do
  local pos = 1
  local size = #batch
  while pos <= size do
    if pos + 3 > size then return redis.error_reply('RAFT_BATCH a record header is cut short') end
    local length = struct.unpack('>I4', batch, pos)
    if pos + 3 + length > size then return redis.error_reply('RAFT_BATCH a record is cut short') end
    n = n + 1
    fields[2 * n - 1] = fmt(head + n - 1)
    fields[2 * n] = string.sub(batch, pos + 4, pos + 3 + length)
    pos = pos + 4 + length
  end
end
if n ~= count then
  return redis.error_reply('RAFT_BATCH the batch holds ' .. fmt(n) .. ' entries, expected ' .. fmt(count))
end
for i = 1, #fields, 1000 do
  redis.call('HSET', KEYS[3], unpack(fields, i, math.min(i + 999, #fields)))
end
local newLast = head + count - 1
if ceiling < floor then
  floor = head
  ceiling = newLast
else
  floor = math.min(floor, head)
  ceiling = math.max(ceiling, newLast)
end
if ARGV[5] == 'staged' then redis.call('DEL', KEYS[4]) end
return finish(first, newLast, floor, ceiling, tonumber(ARGV[4]))
`,
);

/**
 * Adds one piece of a large append to the stage list (the first piece clears it).
 * KEYS: lock, log stage. ARGV: holder, '1' to clear first, piece.
 */
export const STAGE = script(
  'stage',
  COMMON,
  `
local err = lockError()
if err then return err end
if ARGV[2] == '1' then redis.call('DEL', KEYS[2]) end
return redis.call('RPUSH', KEYS[2], ARGV[3])
`,
);

/**
 * Drops entries up to and including upTo (LogStore.compact). KEYS: lock, meta, log.
 * ARGV: holder, upTo, budget. Returns { first, last, more }.
 */
export const COMPACT = script(
  'compact',
  COMMON,
  LOG,
  `
local err = lockError()
if err then return err end
local upTo = tonumber(ARGV[2])
local first, last, floor, ceiling = readMeta()
if upTo >= first then
  first = upTo + 1
  if upTo > last then last = upTo end
end
return finish(first, last, floor, ceiling, tonumber(ARGV[3]))
`,
);

/**
 * Drops entries from `from` on (LogStore.truncate). KEYS: lock, meta, log.
 * ARGV: holder, from, budget. Returns { first, last, more }.
 */
export const TRUNCATE = script(
  'truncate',
  COMMON,
  LOG,
  `
local err = lockError()
if err then return err end
local from = tonumber(ARGV[2])
local first, last, floor, ceiling = readMeta()
if from <= last then last = math.max(from, first) - 1 end
return finish(first, last, floor, ceiling, tonumber(ARGV[3]))
`,
);

/**
 * One more step of deleting the fields outside the bounds. KEYS: lock, meta, log.
 * ARGV: holder, budget. Returns { first, last, more }.
 */
export const SWEEP_LOG = script(
  'sweepLog',
  COMMON,
  LOG,
  `
local err = lockError()
if err then return err end
local first, last, floor, ceiling = readMeta()
return finish(first, last, floor, ceiling, tonumber(ARGV[2]))
`,
);

/**
 * Writes the HardState as one HSET (StableStore.save). KEYS: lock, hard state.
 * ARGV: holder, term, voted ('1' or '0'), votedFor, commit.
 */
export const SAVE_HARD_STATE = script(
  'saveHardState',
  COMMON,
  `
local err = lockError()
if err then return err end
redis.call('HSET', KEYS[2], 'term', ARGV[2], 'voted', ARGV[3], 'votedFor', ARGV[4], 'commit', ARGV[5])
return 1
`,
);

/**
 * Starts a snapshot: a new id, registered as pending (so a crash leaves nothing unaccounted).
 * KEYS: lock, counter, pending. ARGV: holder. Returns the id.
 */
export const SNAPSHOT_CREATE = script(
  'snapshotCreate',
  COMMON,
  `
local err = lockError()
if err then return err end
local id = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[3], fmt(id), '0')
return id
`,
);

/**
 * Stores chunk n of a pending snapshot; chunks go in order. KEYS: lock, pending, chunk key.
 * ARGV: holder, id, n, bytes.
 */
export const SNAPSHOT_CHUNK = script(
  'snapshotChunk',
  COMMON,
  `
local err = lockError()
if err then return err end
local written = redis.call('HGET', KEYS[2], ARGV[2])
if not written then
  return redis.error_reply('RAFT_SINK snapshot ' .. ARGV[2] ..
    ' is not being written any more (aborted, or discarded when its prefix was opened again)')
end
if written ~= ARGV[3] then
  return redis.error_reply('RAFT_SINK chunk ' .. ARGV[3] .. ' of snapshot ' .. ARGV[2] ..
    ' arrived when ' .. written .. ' chunks were stored')
end
redis.call('SET', KEYS[3], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[2], fmt(tonumber(ARGV[3]) + 1))
return 1
`,
);

/**
 * Commits a pending snapshot: it becomes visible to open() in the same step, and the oldest
 * ones beyond retention leave the sorted set for the doomed set (their keys are deleted once
 * no source reads them). KEYS: lock, pending, counter, snaps, doomed, the snapshot's hash.
 * ARGV: holder, id, index, meta JSON, size, chunkBytes, chunks, retain.
 * Returns the ids pruned.
 */
export const SNAPSHOT_COMMIT = script(
  'snapshotCommit',
  COMMON,
  `
local err = lockError()
if err then return err end
local written = redis.call('HGET', KEYS[2], ARGV[2])
if not written then
  return redis.error_reply('RAFT_SINK snapshot ' .. ARGV[2] ..
    ' is not being written any more (aborted, or discarded when its prefix was opened again)')
end
if written ~= ARGV[7] then
  return redis.error_reply('RAFT_SINK snapshot ' .. ARGV[2] .. ' has ' .. written ..
    ' chunks stored, expected ' .. ARGV[7])
end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[6], 'meta', ARGV[4], 'size', ARGV[5], 'chunkBytes', ARGV[6], 'chunks', ARGV[7])
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[4], ARGV[3], string.format('%016d', seq) .. ':' .. ARGV[2])
local excess = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[8])
local pruned = {}
if excess > 0 then
  local victims = redis.call('ZRANGE', KEYS[4], 0, excess - 1)
  for i, member in ipairs(victims) do
    local id = string.match(member, ':(%d+)$')
    pruned[i] = tonumber(id)
    redis.call('SADD', KEYS[5], id)
  end
  redis.call('ZREM', KEYS[4], unpack(victims))
end
return pruned
`,
);

/**
 * The newest committed snapshot (highest index, then last committed), read in one step.
 * KEYS: snaps. ARGV: the snapshot key base (`P snap:`).
 * Returns nil or { id, meta, size, chunkBytes, chunks }.
 */
export const SNAPSHOT_LATEST = script(
  'snapshotLatest',
  `
local top = redis.call('ZREVRANGE', KEYS[1], 0, 0)
if #top == 0 then return false end
local id = string.match(top[1], ':(%d+)$')
local h = redis.call('HMGET', ARGV[1] .. id, 'meta', 'size', 'chunkBytes', 'chunks')
return { id, h[1], h[2], h[3], h[4] }
`,
);

/**
 * Deletes up to `limit` chunks of a pending or doomed snapshot, the last ones first, and the
 * snapshot itself with its last chunk. KEYS: lock, pending, doomed. ARGV: holder, id, key base
 * (`P snap:`), limit. Returns how many chunks are left (0: gone).
 *
 * A snapshot that is neither pending nor doomed is committed and retained (or already gone):
 * it is left alone. The sink of a commit that timed out after Redis applied it aborts, and
 * deleting its keys would leave `P snaps` naming a snapshot without its data, which every
 * later open() would refuse as corrupt.
 */
export const SNAPSHOT_DELETE = script(
  'snapshotDelete',
  COMMON,
  `
local err = lockError()
if err then return err end
local id = ARGV[2]
local hash = ARGV[3] .. id
local n = tonumber(redis.call('HGET', KEYS[2], id))
local pending = n ~= nil
if not pending then
  if redis.call('SISMEMBER', KEYS[3], id) == 0 then return 0 end
  n = tonumber(redis.call('HGET', hash, 'chunks')) or 0
end
local from = math.max(0, n - tonumber(ARGV[4]))
local keys = {}
for i = from, n - 1 do keys[#keys + 1] = hash .. ':' .. fmt(i) end
for i = 1, #keys, 1000 do redis.call('UNLINK', unpack(keys, i, math.min(i + 999, #keys))) end
if from > 0 then
  if pending then redis.call('HSET', KEYS[2], id, fmt(from)) else redis.call('HSET', hash, 'chunks', fmt(from)) end
  return from
end
if pending then redis.call('HDEL', KEYS[2], id) end
redis.call('DEL', hash)
redis.call('SREM', KEYS[3], id)
return 0
`,
);

/** Extends the lock if this store still holds it. KEYS: lock. ARGV: holder, ttl. Returns 1/0. */
export const LOCK_REFRESH = script(
  'lockRefresh',
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`,
);

/** Deletes the lock if this store still holds it. KEYS: lock. ARGV: holder. Returns 1/0. */
export const LOCK_RELEASE = script(
  'lockRelease',
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`,
);

/**
 * Replaces the lock of a holder known to be dead, if it is still that holder's.
 * KEYS: lock. ARGV: the dead holder's value, the new value, ttl. Returns 1/0.
 */
export const LOCK_TAKEOVER = script(
  'lockTakeover',
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`,
);

/** Every script, loaded into Redis's script cache when the stores open. */
export const ALL_SCRIPTS: readonly LuaScript[] = [
  INIT,
  APPEND,
  STAGE,
  COMPACT,
  TRUNCATE,
  SWEEP_LOG,
  SAVE_HARD_STATE,
  SNAPSHOT_CREATE,
  SNAPSHOT_CHUNK,
  SNAPSHOT_COMMIT,
  SNAPSHOT_LATEST,
  SNAPSHOT_DELETE,
  LOCK_REFRESH,
  LOCK_RELEASE,
  LOCK_TAKEOVER,
];
