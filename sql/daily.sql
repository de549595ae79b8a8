-- Daily partitions by the Kafka record timestamp, in UTC:
--   year=2024/month=03/day=31/
-- The same layout as partitioner.class=Daily with timezone=UTC and timestamp.extractor=Record.
-- Use: partition.by.file=sql/daily.sql
date_format(_timestamp, '%Y') AS year,
date_format(_timestamp, '%m') AS month,
date_format(_timestamp, '%d') AS day
