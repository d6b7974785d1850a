-- The product's original schema (SOP): activities, their access tokens, and viewer entries.
-- gen_random_uuid() is built into PostgreSQL 13+, so no extension is needed.

CREATE TABLE activities (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    title            TEXT NOT NULL,
    speaker          TEXT,
    description      TEXT,
    source_language  TEXT NOT NULL,
    target_languages JSONB NOT NULL DEFAULT '[]'::jsonb,
    status           TEXT NOT NULL DEFAULT 'scheduled'
                     CHECK (status IN ('scheduled', 'live', 'ended', 'cancelled')),
    start_time       TIMESTAMPTZ,
    end_time         TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE activity_tokens (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    activity_id UUID NOT NULL REFERENCES activities (id) ON DELETE CASCADE,
    type        TEXT NOT NULL,
    value       TEXT NOT NULL,
    expires_at  TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (activity_id, type, value)
);

CREATE TABLE viewer_entries (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    activity_id UUID NOT NULL REFERENCES activities (id) ON DELETE CASCADE,
    viewer_name TEXT,
    language    TEXT,
    joined_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    left_at     TIMESTAMPTZ
);

CREATE INDEX idx_activities_status ON activities (status);
CREATE INDEX idx_activity_tokens_activity ON activity_tokens (activity_id);
CREATE INDEX idx_viewer_entries_activity ON viewer_entries (activity_id);
