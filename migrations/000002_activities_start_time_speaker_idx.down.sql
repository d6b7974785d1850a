-- orion:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS idx_activities_speaker;

DROP INDEX CONCURRENTLY IF EXISTS idx_activities_start_time;
