-- orion:no-transaction
-- orion:lock-timeout 5s
-- Built CONCURRENTLY so writes to activities go on during the build. Each statement is retryable
-- (IF NOT EXISTS); an INVALID index left by a failed build is dropped before the retry.

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_activities_start_time ON activities (start_time);

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_activities_speaker ON activities (speaker);
