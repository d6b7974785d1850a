DROP TABLE viewer_entries;
DROP TABLE activity_tokens;
DROP TABLE activities;
