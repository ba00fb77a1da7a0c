"""Every Redis key, prefix and Lua script of Rewind, in one place (as arq keeps its in
`constants.py`): a key is named here once, and nothing outside `bot/store/` writes one.

The saq queue keeps its own keys under `saq:` (the queue's name from `QUEUE_NAME`); the job keys
below only make a job unique within it.
"""

from __future__ import annotations

PREFIX = "rewind:"

# ---- incidents, the per-app lock, the audit trail (bot.store.redis_store) ---------------------
OPEN = f"{PREFIX}open"  # set of open incident ids
RECENT = f"{PREFIX}recent"  # sorted set: incident id by creation time


def incident(incident_id: str) -> str:
    return f"{PREFIX}incident:{incident_id}"


def audit(incident_id: str) -> str:
    return f"{PREFIX}audit:{incident_id}"


def lock(app: str) -> str:
    return f"{PREFIX}lock:{app}"


def fence(app: str) -> str:
    return f"{PREFIX}fence:{app}"


def seen(key: str) -> str:
    """Idempotency: set once, for a while (Slack retries, replays, one notice per outage)."""
    return f"{PREFIX}seen:{key}"


def freeze(app: str) -> str:
    return f"{PREFIX}freeze:{app}"


def plan(plan_id: str) -> str:
    return f"{PREFIX}plan:{plan_id}"


# ---- deploys and watches (bot.store.watches) ---------------------------------------------------
WATCHES = f"{PREFIX}watches"  # set of the watches a worker looks after
WATCH_TTL = 7 * 86400  # seconds a watch is kept


def deploys(app: str) -> str:
    return f"{PREFIX}deploys:{app}"


def watch(watch_id: str) -> str:
    return f"{PREFIX}watch:{watch_id}"


def watch_latest(app: str) -> str:
    return f"{PREFIX}watch-latest:{app}"


def seen_watch(key: str) -> str:
    return seen(f"watch:{key}")


def looked_bad(app: str) -> str:
    return f"{PREFIX}looked-bad:{app}"


def baseline(app: str) -> str:
    return f"{PREFIX}baseline:{app}"


def quarantine(app: str) -> str:
    return f"{PREFIX}quarantine:{app}"


# ---- commands acked but not yet carried out (bot.store.pending) --------------------------------
COMMANDS = f"{PREFIX}commands"  # hash: command key -> the kept command (JSON)


def command_lease(key: str) -> str:
    return f"{PREFIX}command-lease:{key}"


def seen_command(key: str) -> str:
    return seen(f"cmd:{key}")


# ---- stakeholder notices held while Slack was unreachable (bot.store.held) ---------------------
HELD_NOTICES = f"{PREFIX}held_notices"


# ---- saq job keys (unique within the queue, not Redis keys of their own) -----------------------
def step_job(incident_id: str, step: str, attempt: int) -> str:
    return f"{incident_id}:{step}:{attempt}"


def tick_job(watch_id: str, n: int) -> str:
    return f"watch:{watch_id}:{n}"


def webhook_job(delivery: str, index: int) -> str:
    return f"hook:{delivery}:{index}"


# ---- Lua scripts --------------------------------------------------------------------------------
# The compare-and-set both an incident and a watch are saved with: KEYS[1] holds the JSON,
# ARGV[1] the new JSON, ARGV[2] the version it was read at (0: new). A stale write is refused.
_COMPARE = """
local cur = redis.call('GET', KEYS[1])
local expected = tonumber(ARGV[2])
if cur then
  if cjson.decode(cur)['version'] ~= expected then return 0 end
elseif expected ~= 0 then return 0 end
"""

# KEYS: incident, OPEN, RECENT, audit, lock. ARGV: json, expected, open ('1'/'0'), id,
# created (epoch), retention (s), forget-before (epoch).
SAVE_INCIDENT = (
    _COMPARE
    + """redis.call('SET', KEYS[1], ARGV[1])
if ARGV[3] == '1' then
  redis.call('SADD', KEYS[2], ARGV[4])
  redis.call('PERSIST', KEYS[4])
else
  -- Closed: the incident and its audit trail go after the retention (the report is in git).
  redis.call('SREM', KEYS[2], ARGV[4])
  -- Its app's lock goes in the same write, so that nobody sees it ended yet holding the app
  -- (the service's own release comes after a WAIT, Slack, events) and a failover keeps both.
  local holder = redis.call('GET', KEYS[5])
  if holder and string.match(holder, '^(.*):') == ARGV[4] then redis.call('DEL', KEYS[5]) end
  redis.call('EXPIRE', KEYS[1], ARGV[6])
  redis.call('EXPIRE', KEYS[4], ARGV[6])
end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[7])
return 1
"""
)

# KEYS: watch, WATCHES. ARGV: json, expected, active ('1'/'0'), id.
SAVE_WATCH = (
    _COMPARE
    + f"""redis.call('SET', KEYS[1], ARGV[1], 'EX', {WATCH_TTL})
if ARGV[3] == '1' then redis.call('SADD', KEYS[2], ARGV[4])
else redis.call('SREM', KEYS[2], ARGV[4]) end
return 1
"""
)

# KEYS: lock, fence. ARGV: incident id. Returns {token, holder}; token 0: held by holder.
ACQUIRE_LOCK = """
local holder = redis.call('GET', KEYS[1])
if holder then return {0, holder} end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token)
return {token, ARGV[1]}
"""

# A group's locks, all or none. KEYS: lock1, fence1, lock2, fence2, … ARGV: the incident id of
# each lock, in the same order. Returns {1, token1, token2, …}, or {0, app index, holder}.
ACQUIRE_LOCKS = """
local n = #ARGV
for i = 1, n do
  local holder = redis.call('GET', KEYS[2 * i - 1])
  if holder then return {0, i, holder} end
end
local out = {1}
for i = 1, n do
  local token = redis.call('INCR', KEYS[2 * i])
  redis.call('SET', KEYS[2 * i - 1], ARGV[i] .. ':' .. token)
  out[i + 1] = token
end
return out
"""

# KEYS: lock. ARGV: incident id. Only the holder's release frees the app.
RELEASE_LOCK = """
local holder = redis.call('GET', KEYS[1])
if holder and string.match(holder, '^(.*):') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: audit, incident. ARGV: at, who, what, result. A closed incident's trail expires with it.
AUDIT = """
redis.call('XADD', KEYS[1], '*', 'at', ARGV[1], 'who', ARGV[2], 'what', ARGV[3], 'result', ARGV[4])
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""

# KEYS: COMMANDS, then each command's seen_command and command_lease. ARGV: owner, seen ttl,
# lease, then each command's key, record and token (its own, one per ack). For each command, in
# order: the seen-before check, the record and its lease; 1 if recorded, 0 if seen before (a
# Slack retry of the same trigger, also within the batch). A command seen before under its own
# token is its own earlier try, whose answer was lost on the way (`bot.store.quick_line`): 1.
# A batch of acks, however many, is one command and one answer.
RECORD_COMMANDS = """
local out = {}
for i = 1, (#KEYS - 1) / 2 do
  local a = 3 * i + 1
  if redis.call('SET', KEYS[2 * i], ARGV[a + 2], 'NX', 'EX', ARGV[2]) then
    redis.call('HSET', KEYS[1], ARGV[a], ARGV[a + 1])
    redis.call('SET', KEYS[2 * i + 1], ARGV[1], 'EX', ARGV[3])
    out[i] = 1
  elseif redis.call('GET', KEYS[2 * i]) == ARGV[a + 2] then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

# KEYS: the command_lease of every command a process holds. ARGV: owner, lease. One command and
# one answer however many it holds: a pipeline of one SET each held the web process's loop for
# about 7 ms at 200 commands (redis-py packs and parses each), and an ack waited behind it.
RENEW_LEASES = """
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
end
return #KEYS
"""
