-- Hourly partitions by the Kafka record timestamp, in UTC:
--   year=2024/month=03/day=31/hour=01/
-- The same layout as partitioner.class=Hourly with timezone=UTC and timestamp.extractor=Record.
-- For another time zone, wrap the timestamp:
--   to_local_time(arrow_cast(_timestamp, 'Timestamp(Millisecond, Some("Europe/Berlin"))'))
-- Use: partition.by.file=sql/hourly.sql
date_format(_timestamp, '%Y') AS year,
date_format(_timestamp, '%m') AS month,
date_format(_timestamp, '%d') AS day,
date_format(_timestamp, '%H') AS hour
