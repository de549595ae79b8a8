-- Partitions by a field, then by the hour of the Kafka record timestamp (UTC):
--   event_type=page_view/dt=2024-03-31/hour=01/
-- Use: partition.by.file=sql/by_field_hour.sql
event_type,
date_format(_timestamp, '%Y-%m-%d') AS dt,
date_format(_timestamp, '%H') AS hour
