-- orion:no-transaction
-- orion:lock-timeout 5s
-- orion:allow non-transactional-multiple-statements
-- Built CONCURRENTLY so writes to activities go on during the build. Each statement is retryable
-- (IF NOT EXISTS) and orion-db records progress per statement, so two statements in one file resume
-- safely; an INVALID index left by a failed build is dropped before the retry.

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_activities_start_time ON activities (start_time);

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_activities_speaker ON activities (speaker);
