-- ensure.lua: creates a topic's metadata, or reports what is stored.
--
-- KEYS[1]  metadata hash of the topic
-- ARGV[1]  capacity wanted
-- ARGV[2]  time to live wanted, in microseconds (0 = none)
-- ARGV[3]  epoch to use if the topic is new (random, chosen by the client)
--
-- Returns {capacity, ttl_us, epoch, created_us} as stored. The client compares
-- them with what it asked for; creating and reading in one script means two
-- clients racing to create a topic agree on exactly one set of settings.

local meta = redis.call('HMGET', KEYS[1], 'cap', 'ttl', 'epoch', 'created')
if not meta[1] then
  local created = us_string(now_us())
  redis.call('HSET', KEYS[1], 'cap', ARGV[1], 'ttl', ARGV[2],
    'epoch', ARGV[3], 'created', created)
  return {ARGV[1], ARGV[2], ARGV[3], created}
end
return meta
