-- common.lua: helpers prepended to every hzreliable script.
--
-- Stream entry IDs are "0-N" where N = sequence + 1 (XADD ... 0-*), so the
-- sequence is read straight from the ID. Each entry carries the fields
-- t (publish time, microseconds since the epoch, from Redis's clock),
-- c (codec tag) and d (payload), in that order.

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Microsecond times pass 1e15, where tostring() switches to exponent form.
local function us_string(us)
  return string.format('%.0f', us)
end

local function seq_of(id)
  return tonumber(string.match(id, '^0%-(%d+)$')) - 1
end

-- An entry written by another tool may lack a time; it counts as expired so
-- that it cannot pin the retention period forever.
local function time_of(entry)
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 't' then
      return tonumber(fields[i + 1]) or 0
    end
  end
  return 0
end

-- Removes every entry older than ttl_us. Entries are in publish order, so the
-- expired ones form a prefix: scan from the head until the first live entry.
local function expire(stream, ttl_us, now)
  if ttl_us <= 0 then
    return
  end
  local cutoff = now - ttl_us
  local start = '-'
  while true do
    local batch = redis.call('XRANGE', stream, start, '+', 'COUNT', 128)
    for _, entry in ipairs(batch) do
      if time_of(entry) > cutoff then
        if start ~= '-' or entry ~= batch[1] then
          redis.call('XTRIM', stream, 'MINID', '=', entry[1])
        end
        return
      end
    end
    if #batch < 128 then
      if #batch > 0 or start ~= '-' then
        redis.call('XTRIM', stream, 'MAXLEN', '=', 0)
      end
      return
    end
    start = '0-' .. us_string(seq_of(batch[#batch][1]) + 2)
  end
end

-- The tail is the last sequence ever assigned, which outlives trimming.
local function tail_of(stream)
  if redis.call('EXISTS', stream) == 0 then
    return -1
  end
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      return seq_of(info[i + 1])
    end
  end
  return -1
end
