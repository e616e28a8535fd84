//! The MySQL schema, created by numbered migrations at startup.
//!
//! Owns: every `CREATE TABLE`. The seed's six tables keep their names and columns (ids are
//! assigned by the meta store, so `AUTO_INCREMENT` columns receive explicit values); columns
//! Shale needs beyond the seed are added at the end, and Shale's own records (tables,
//! tablets, procedures, stat rows, the retry table, marks) get their own `shale_*` tables
//! holding a compare-and-set version and the record's bincode body. Must not: change a
//! migration once released; add a new one instead.

/// (version, statements). Applied in order, each version once, recorded in
/// `shale_schema_migrations`.
pub const MIGRATIONS: &[(u32, &[&str])] = &[(
    1,
    &[
        "CREATE TABLE IF NOT EXISTS id_mapping (
            key_id INT UNSIGNED AUTO_INCREMENT NOT NULL PRIMARY KEY COMMENT 'global unique id',
            key_str VARCHAR(255) NOT NULL COMMENT 'key string, cannot be longer than 255 characters',
            created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP COMMENT 'created time',
            UNIQUE KEY (key_str))",
        "CREATE TABLE IF NOT EXISTS table_info (
            id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
            table_name VARCHAR(255) NOT NULL COMMENT 'table name',
            partition_count_per_day INT UNSIGNED NOT NULL COMMENT 'partition count per day',
            UNIQUE KEY (table_name))",
        "CREATE TABLE IF NOT EXISTS column_info (
            id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
            table_name VARCHAR(255) NOT NULL COMMENT 'table name',
            column_name VARCHAR(255) NOT NULL COMMENT 'column name',
            column_type VARCHAR(255) NOT NULL COMMENT 'column type',
            column_index INT UNSIGNED NOT NULL COMMENT 'column index',
            column_id INT UNSIGNED NOT NULL COMMENT 'global unique id for column according to id_mapping',
            column_comment VARCHAR(255) NOT NULL COMMENT 'column comment',
            UNIQUE KEY (table_name, column_name, column_id))",
        "CREATE TABLE IF NOT EXISTS partition_info (
            id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
            table_name VARCHAR(255) NOT NULL COMMENT 'table name',
            partition_date INT UNSIGNED NOT NULL COMMENT 'partition date, format: YYYYMMDD',
            partition_index INT UNSIGNED NOT NULL COMMENT 'partition index',
            node_id BIGINT UNSIGNED NOT NULL COMMENT 'node id',
            created_at_ns BIGINT UNSIGNED NOT NULL COMMENT 'meta store clock',
            moves INT UNSIGNED NOT NULL COMMENT 'explicit moves so far',
            UNIQUE KEY (table_name, partition_date, partition_index))",
        "CREATE TABLE IF NOT EXISTS worker_node_info (
            id BIGINT UNSIGNED PRIMARY KEY,
            node_name VARCHAR(255) NOT NULL COMMENT 'node name',
            node_ip VARCHAR(255) NOT NULL COMMENT 'node ip',
            node_port INT UNSIGNED NOT NULL COMMENT 'node port',
            node_status INT NOT NULL COMMENT 'node status, 0 for down, 1 for alive, 2 decommissioned',
            total_disk_size BIGINT UNSIGNED NOT NULL COMMENT 'total disk size',
            version BIGINT UNSIGNED NOT NULL COMMENT 'compare-and-set version',
            body BLOB NOT NULL COMMENT 'the full node record (bincode)',
            UNIQUE KEY (node_name))",
        "CREATE TABLE IF NOT EXISTS node_storage_info (
            node_id BIGINT UNSIGNED NOT NULL COMMENT 'node id',
            used_disk_size BIGINT UNSIGNED NOT NULL COMMENT 'used disk size',
            updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT 'updated time',
            at_ns BIGINT UNSIGNED NOT NULL COMMENT 'meta store clock of the report',
            seq INT UNSIGNED NOT NULL COMMENT 'position in the bounded history, oldest 0',
            PRIMARY KEY (node_id, seq))",
        "CREATE TABLE IF NOT EXISTS shale_tables (
            record_key VARBINARY(1024) NOT NULL PRIMARY KEY COMMENT 'bincode of the record key',
            version BIGINT UNSIGNED NOT NULL COMMENT 'compare-and-set version',
            body LONGBLOB NOT NULL COMMENT 'bincode of the record')",
        "CREATE TABLE IF NOT EXISTS shale_tablets (
            record_key VARBINARY(1024) NOT NULL PRIMARY KEY COMMENT 'bincode of the record key',
            version BIGINT UNSIGNED NOT NULL COMMENT 'compare-and-set version',
            body LONGBLOB NOT NULL COMMENT 'bincode of the record')",
        "CREATE TABLE IF NOT EXISTS shale_procedures (
            record_key VARBINARY(1024) NOT NULL PRIMARY KEY COMMENT 'bincode of the record key',
            version BIGINT UNSIGNED NOT NULL COMMENT 'compare-and-set version',
            body LONGBLOB NOT NULL COMMENT 'bincode of the record')",
        "CREATE TABLE IF NOT EXISTS shale_stats (
            record_key VARBINARY(1024) NOT NULL PRIMARY KEY COMMENT 'bincode of the record key',
            version BIGINT UNSIGNED NOT NULL COMMENT 'compare-and-set version',
            body LONGBLOB NOT NULL COMMENT 'bincode of the record')",
        "CREATE TABLE IF NOT EXISTS shale_dedup (
            origin VARBINARY(64) NOT NULL PRIMARY KEY,
            revision BIGINT UNSIGNED NOT NULL,
            body BLOB NOT NULL)",
        "CREATE TABLE IF NOT EXISTS shale_state (
            k VARCHAR(32) NOT NULL PRIMARY KEY,
            v BLOB NOT NULL)",
    ],
)];
