-- Files service schema, version 1.
-- Sizes are bytes; times are timestamptz; ids are uuids made by the database.

CREATE TABLE users (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email             text NOT NULL UNIQUE,
    subscription_tier text NOT NULL DEFAULT 'free'
                      CHECK (subscription_tier IN ('free', 'pro')),
    api_token_hash    text NOT NULL UNIQUE,  -- hex sha256 of the bearer token
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE storage_files (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            text NOT NULL,
    content_type    text NOT NULL,
    size_bytes      bigint NOT NULL CHECK (size_bytes >= 0),
    checksum_sha256 text NOT NULL,
    object_key      text NOT NULL UNIQUE,
    status          text NOT NULL DEFAULT 'stored' CHECK (status IN ('stored', 'queued')),
    is_deleted      boolean NOT NULL DEFAULT false,
    deleted_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_storage_files_user_id ON storage_files (user_id);
CREATE INDEX idx_storage_files_queued ON storage_files (created_at) WHERE status = 'queued';
CREATE INDEX idx_storage_files_deleted ON storage_files (deleted_at) WHERE is_deleted;

CREATE TABLE file_shares (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    file_id        uuid NOT NULL REFERENCES storage_files (id) ON DELETE CASCADE,
    token          text NOT NULL UNIQUE,
    permission     text NOT NULL CHECK (permission IN ('view', 'download')),
    expires_at     timestamptz,
    max_downloads  integer CHECK (max_downloads IS NULL OR max_downloads >= 0),
    download_count integer NOT NULL DEFAULT 0 CHECK (download_count >= 0),
    created_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_file_shares_file_id ON file_shares (file_id);

-- One row per rejected or failed upload (the runbook joins it with users).
CREATE TABLE upload_failures (
    id           bigserial PRIMARY KEY,
    user_id      uuid REFERENCES users (id) ON DELETE SET NULL,
    file_name    text,
    size_bytes   bigint,
    content_type text,
    reason       text NOT NULL,
    status_code  integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idx_upload_failures_created_at ON upload_failures (created_at);

-- Switches every replica reads, e.g. the "Uploads disabled" banner.
CREATE TABLE feature_flags (
    name       text PRIMARY KEY,
    enabled    boolean NOT NULL DEFAULT false,
    value      text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO feature_flags (name, enabled, value) VALUES ('uploads_disabled', false, '');
