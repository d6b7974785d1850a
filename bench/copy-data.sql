-- 800,000 rows in the SOP's three tables, as a SQLite application keeps them: uuids and JSON as text,
-- times as ISO-8601 text (with and without a zone), unicode, NULLs. Times are text because pgloader
-- refuses unix epoch integers for timestamptz ("date/time field value out of range").
-- :activities, :tokens and :viewers are replaced by the bench.
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
CREATE TABLE activities (id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT, speaker TEXT NOT NULL,
  start_time DATETIME NOT NULL, end_time DATETIME, input_language TEXT NOT NULL, target_languages TEXT NOT NULL,
  cover_url TEXT, status TEXT NOT NULL, viewer_url TEXT, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL);
CREATE TABLE activity_tokens (id TEXT PRIMARY KEY, activity_id TEXT NOT NULL REFERENCES activities (id), type TEXT NOT NULL,
  value TEXT NOT NULL, expires_at DATETIME NOT NULL, max_audience INTEGER, created_at DATETIME NOT NULL, status TEXT NOT NULL,
  UNIQUE (activity_id, type, value));
CREATE TABLE viewer_entries (activity_id TEXT PRIMARY KEY REFERENCES activities (id), share_url TEXT NOT NULL,
  qr_type TEXT NOT NULL, qr_content TEXT NOT NULL, status TEXT NOT NULL, updated_at DATETIME NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :activities)
INSERT INTO activities SELECT printf('%08x-0000-4000-8000-%012x', i, i * 7919), 'Réunion 会议 №' || i || ' — ' || hex(randomblob(8)),
  CASE WHEN i % 7 = 0 THEN NULL ELSE 'Séance plénière ' || hex(randomblob(16)) END, 'Ada Łovelace ' || (i % 97),
  strftime('%Y-%m-%dT%H:%M:%fZ', 1700000000 + i * 60, 'unixepoch'),
  CASE WHEN i % 3 = 0 THEN NULL ELSE datetime(1700000000 + i * 60 + 3600, 'unixepoch') END,
  'zh', '["fr","de","日本語"]', CASE WHEN i % 5 = 0 THEN NULL ELSE 'https://cdn.example/' || i || '.png' END, 'scheduled', NULL,
  datetime(1700000000 + i, 'unixepoch'), datetime(1700000000 + i, 'unixepoch')
FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :tokens)
INSERT INTO activity_tokens SELECT printf('%08x-1111-4000-8000-%012x', i, i),
  printf('%08x-0000-4000-8000-%012x', (i % :activities) + 1, ((i % :activities) + 1) * 7919),
  CASE WHEN i % 2 = 0 THEN 'viewer' ELSE 'speaker' END, hex(randomblob(12)) || i, datetime(1800000000 + i, 'unixepoch'),
  CASE WHEN i % 4 = 0 THEN NULL ELSE i % 500 END, datetime(1700000000 + i, 'unixepoch'), 'active' FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :viewers)
INSERT INTO viewer_entries SELECT printf('%08x-0000-4000-8000-%012x', i, i * 7919), 'https://v.example/' || i, 'url',
  '{"u":"https://v.example/' || i || '","ü":"✓"}', 'ready', datetime(1700000000 + i, 'unixepoch') FROM n;
