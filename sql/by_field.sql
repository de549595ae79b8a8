-- Partitions by the value of one field (here `event_type` of the sample clickstream events):
--   event_type=page_view/
-- Null or empty values go to event_type=__HIVE_DEFAULT_PARTITION__; `/`, `=`, `%` and other
-- special characters are escaped as Hive does. Nested fields: "geo"['country'] AS country.
-- Equivalent to partitioner.class=Field with partition.field.name=event_type.
-- Use: partition.by.file=sql/by_field.sql
event_type
