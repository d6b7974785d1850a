-- The SOP's own rollback (section 4): drop the new tables, dependents first.
DROP TABLE IF EXISTS viewer_entries;
DROP TABLE IF EXISTS activity_tokens;
DROP TABLE IF EXISTS activities;
