--[[ attach_media: store a tweet job's media with the job the enqueue before it (in the same
MULTI/EXEC) has just stored. The job is the one this enqueue stored only if its record carries
this payload and no media yet: an id taken by another job, or a job refused as a duplicate (no
record), gets nothing, so an enqueue that stored nothing can never change another job's media.
A record with this very payload is the same job (the payload names each file's SHA-256), so a
re-sent enqueue finds its media attached already and leaves it.

KEYS[1]     the job's record (hash)
KEYS[2]     the job's media (hash: index -> bytes)
KEYS[3]     migration fence (never exists; see keys.py)
ARGV[1]     the job's payload, as the enqueue stored it
ARGV[2]     keep_ms: the media's time to live (the job deletes it when it ends)
ARGV[3..]   the media, in order
Returns     1 attached, 0 not (nothing written)
]]
local job_key, media_key = KEYS[1], KEYS[2]
local stored = redis.call('HMGET', job_key, 'payload', 'has_media')
if stored[1] ~= ARGV[1] or stored[2] then
  return 0
end
local media = {}
for i = 3, #ARGV do
  media[#media + 1] = tostring(i - 3)
  media[#media + 1] = ARGV[i]
end
redis.call('DEL', media_key)
redis.call('HSET', media_key, unpack(media))
redis.call('PEXPIRE', media_key, ARGV[2])
-- The flag tells job_end.lua there is media to delete: jobs without pay nothing for it.
redis.call('HSET', job_key, 'has_media', '1')
return 1
